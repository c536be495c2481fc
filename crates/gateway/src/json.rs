//! Reading Huawei's JSON request bodies by hand, so that every malformed
//! or mistyped body gets the documented error instead of a framework
//! rejection, and so that numbers sent where strings are documented (and
//! vice versa) are accepted as the real service accepts them.

use http::HeaderMap;
use serde_json::{Map, Value};

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// `Content-Type` present and not JSON.
    ContentType,
    /// Not a JSON object.
    Malformed,
    /// A field has the wrong JSON type.
    WrongType(&'static str),
}

/// A parsed JSON object body, or an object inside one. Nested objects are
/// borrowed, never copied: reading a field of a field costs no allocation
/// beyond the value asked for (the body was parsed once).
#[derive(Debug, Default, ref_cast::RefCast)]
#[repr(transparent)]
pub struct JsonBody(Map<String, Value>);

impl JsonBody {
    /// Parses `bytes`; an empty body reads as `{}`.
    pub fn parse(headers: &HeaderMap, bytes: &[u8]) -> Result<Self, BodyError> {
        if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").trim().to_ascii_lowercase();
            if !ct.starts_with("application/json") {
                return Err(BodyError::ContentType);
            }
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(BodyError::Malformed),
        }
    }

    /// The field `name`; `null` reads as absent.
    fn field(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A string field; a JSON number is accepted and read as its decimal
    /// text (lenient input typing). `null` reads as absent.
    pub fn string(&self, name: &'static str) -> Result<Option<String>, BodyError> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }

    /// A string field that must be a JSON string.
    pub fn strict_string(&self, name: &'static str) -> Result<Option<String>, BodyError> {
        self.field(name).map(|v| v.as_str().map(str::to_owned).ok_or(BodyError::WrongType(name))).transpose()
    }

    /// A boolean field (JSON booleans only).
    pub fn bool(&self, name: &'static str) -> Result<Option<bool>, BodyError> {
        self.field(name).map(|v| v.as_bool().ok_or(BodyError::WrongType(name))).transpose()
    }

    /// A list of strings.
    pub fn string_list(&self, name: &'static str) -> Result<Option<Vec<String>>, BodyError> {
        let Some(value) = self.field(name) else { return Ok(None) };
        let items = value.as_array().ok_or(BodyError::WrongType(name))?;
        items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(BodyError::WrongType(name)))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// An integer; a numeric string is accepted too (lenient input typing).
    pub fn int(&self, name: &'static str) -> Result<Option<i64>, BodyError> {
        match self.field(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(BodyError::WrongType(name)),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| BodyError::WrongType(name)),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }

    /// A list of objects, borrowed.
    pub fn objects(&self, name: &'static str) -> Result<Option<Vec<&JsonBody>>, BodyError> {
        let Some(value) = self.field(name) else { return Ok(None) };
        let items = value.as_array().ok_or(BodyError::WrongType(name))?;
        items.iter().map(|v| as_object(v).ok_or(BodyError::WrongType(name))).collect::<Result<_, _>>().map(Some)
    }

    /// True when the field is present (even as `null`).
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A nested object, borrowed.
    pub fn object(&self, name: &'static str) -> Result<Option<&JsonBody>, BodyError> {
        self.field(name).map(|v| as_object(v).ok_or(BodyError::WrongType(name))).transpose()
    }
}

fn as_object(value: &Value) -> Option<&JsonBody> {
    use ref_cast::RefCast;
    value.as_object().map(JsonBody::ref_cast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, "application/json;charset=UTF-8".parse().unwrap());
        h
    }

    #[test]
    fn lenient_strings_and_strict_types() {
        let body = JsonBody::parse(&json_headers(), br#"{"limit": 10, "marker": "5", "flag": "true", "list": ["a"]}"#)
            .unwrap();
        assert_eq!(body.string("limit").unwrap().as_deref(), Some("10"));
        assert_eq!(body.string("marker").unwrap().as_deref(), Some("5"));
        assert_eq!(body.strict_string("limit"), Err(BodyError::WrongType("limit")));
        assert_eq!(body.bool("flag"), Err(BodyError::WrongType("flag")));
        assert_eq!(body.string_list("list").unwrap(), Some(vec!["a".to_owned()]));
        assert_eq!(body.string("absent").unwrap(), None);
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert_eq!(JsonBody::parse(&json_headers(), b"[1]").unwrap_err(), BodyError::Malformed);
        assert_eq!(JsonBody::parse(&json_headers(), b"{").unwrap_err(), BodyError::Malformed);
        assert!(JsonBody::parse(&json_headers(), b"").is_ok());
        let mut form = HeaderMap::new();
        form.insert(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        assert_eq!(JsonBody::parse(&form, b"{}").unwrap_err(), BodyError::ContentType);
    }
}
