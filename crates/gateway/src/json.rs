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

/// A parsed JSON object body.
#[derive(Debug, Default)]
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

    /// A string field; a JSON number is accepted and read as its decimal
    /// text (lenient input typing). `null` reads as absent.
    pub fn string(&self, name: &'static str) -> Result<Option<String>, BodyError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }

    /// A string field that must be a JSON string.
    pub fn strict_string(&self, name: &'static str) -> Result<Option<String>, BodyError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }

    /// A boolean field (JSON booleans only).
    pub fn bool(&self, name: &'static str) -> Result<Option<bool>, BodyError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }

    /// A list of strings.
    pub fn string_list(&self, name: &'static str) -> Result<Option<Vec<String>>, BodyError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or(BodyError::WrongType(name)))
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }

    /// An integer; a numeric string is accepted too (lenient input typing).
    pub fn int(&self, name: &'static str) -> Result<Option<i64>, BodyError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(BodyError::WrongType(name)),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| BodyError::WrongType(name)),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }

    /// A list of objects.
    pub fn objects(&self, name: &'static str) -> Result<Option<Vec<JsonBody>>, BodyError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(map) => Ok(JsonBody(map.clone())),
                    _ => Err(BodyError::WrongType(name)),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }

    /// True when the field is present (even as `null`).
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A nested object.
    pub fn object(&self, name: &'static str) -> Result<Option<JsonBody>, BodyError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(JsonBody(map.clone()))),
            Some(_) => Err(BodyError::WrongType(name)),
        }
    }
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
