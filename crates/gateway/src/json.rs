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
        // Bounded before it is built: a tree of small values costs many
        // times its text (a 12 MB array of numbers grew the heap by 460 MiB).
        scan(bytes)
            .filter(|shape| shape.values <= MAX_VALUES && shape.depth <= MAX_DEPTH)
            .ok_or(BodyError::Malformed)?;
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

/// Most values (scalars, arrays and objects) one body may hold: the
/// largest documented body (a batch of a thousand resources with a few
/// fields each) holds about five thousand.
pub const MAX_VALUES: usize = 20_000;

/// Deepest nesting of arrays and objects one body may have; Huawei's
/// bodies nest four levels at most.
pub const MAX_DEPTH: usize = 32;

/// What a body would build if parsed: its values and nesting depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Scalars, arrays and objects (object keys not counted).
    pub values: usize,
    /// Deepest nesting of arrays and objects.
    pub depth: usize,
}

/// The shape of a JSON text, in one pass over a stack of at most
/// [`MAX_DEPTH`] entries, or `None` if
/// it is not well-formed enough to count (an unterminated string,
/// unbalanced brackets). It does not validate: the parser still does.
/// Values are counted by their separators: each array or object is one,
/// and each comma or (for arrays) opening bracket with content starts one.
pub fn scan(bytes: &[u8]) -> Option<Shape> {
    // One entry per open container: true for an array.
    let mut open: Vec<bool> = Vec::new();
    let (mut values, mut depth) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    // Whether the innermost array has had a value yet.
    let mut array_started = false;
    let mut top_level = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        // A value starts wherever an array expects one and gets one.
        if open.last() == Some(&true) && !array_started && b != b']' {
            values += 1;
            array_started = true;
        } else if open.is_empty() && !top_level {
            values += 1;
            top_level = true;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                // Cap the stack itself: the caller refuses past MAX_DEPTH.
                if open.len() > MAX_DEPTH {
                    return Some(Shape { values, depth: open.len() + 1 });
                }
                open.push(b == b'[');
                depth = depth.max(open.len());
                array_started = false;
            }
            b']' | b'}' => {
                if open.pop() != Some(b == b']') {
                    return None;
                }
                array_started = true;
            }
            b',' => match open.last() {
                Some(true) => values += 1,
                Some(false) => {}
                None => return None,
            },
            // An object member's value follows its colon.
            b':' if open.last() == Some(&false) => values += 1,
            _ => {}
        }
    }
    (!in_string && open.is_empty()).then_some(Shape { values, depth })
}

/// Bytes of memory that handling `bytes` as a request body may cost: the
/// buffer, the parsed tree (strings once more, about 80 bytes per value
/// with its map entry), the copies into a gRPC message and its encoding,
/// and a fixed allowance for the rest of the request.
pub fn cost(bytes: &[u8]) -> usize {
    const PER_VALUE: usize = 80;
    const FIXED: usize = 16 * 1024;
    let values = scan(bytes).map_or(0, |shape| shape.values.min(MAX_VALUES));
    FIXED + bytes.len() * 4 + values * PER_VALUE
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
    fn shapes_count_values_and_depth() {
        let shape = |text: &str| scan(text.as_bytes());
        assert_eq!(shape("{}"), Some(Shape { values: 1, depth: 1 }));
        assert_eq!(shape(r#"{"a": 1, "b": [1, 2, {"c": "x,]}"}]}"#), Some(Shape { values: 7, depth: 3 }));
        assert_eq!(shape("[]"), Some(Shape { values: 1, depth: 1 }));
        assert_eq!(shape("[[], [1]]"), Some(Shape { values: 4, depth: 2 }));
        assert_eq!(shape(r#""a\"b""#), Some(Shape { values: 1, depth: 0 }));
        // A repeated key is counted each time (the tree keeps one): the
        // scan is an upper bound.
        assert_eq!(shape(r#"{"a": [1], "a": 2}"#), Some(Shape { values: 4, depth: 2 }));
        assert_eq!(shape("[1, 2"), None);
        assert_eq!(shape("[1}"), None);
        assert_eq!(shape(r#"{"a": "b}"#), None);
        // Without repeated keys, the count is serde_json's tree exactly.
        for text in [r#"{"k": [1, 2, 3], "o": {"p": null, "q": [true, false, []]}}"#, r#"[{"a": [[[]]]}, 5]"#] {
            let tree: Value = serde_json::from_str(text).unwrap();
            fn count(v: &Value) -> usize {
                1 + match v {
                    Value::Array(a) => a.iter().map(count).sum(),
                    Value::Object(o) => o.values().map(count).sum(),
                    _ => 0,
                }
            }
            assert_eq!(shape(text).unwrap().values, count(&tree), "{text}");
        }
    }

    #[test]
    fn bodies_past_the_caps_are_refused_before_parsing() {
        let many = format!("{{\"a\": [{}]}}", vec!["1"; MAX_VALUES].join(","));
        assert_eq!(JsonBody::parse(&json_headers(), many.as_bytes()).unwrap_err(), BodyError::Malformed);
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(JsonBody::parse(&json_headers(), deep.as_bytes()).unwrap_err(), BodyError::Malformed);
        let deepest = format!("{{\"a\": {}{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(JsonBody::parse(&json_headers(), deepest.as_bytes()).is_ok());
        let bottomless = "[".repeat(1 << 20);
        assert_eq!(scan(bottomless.as_bytes()).unwrap().depth, MAX_DEPTH + 2, "the scan stops at the cap");
        assert!(cost(many.as_bytes()) < 2 << 20);
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
