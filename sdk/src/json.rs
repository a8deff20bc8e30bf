//! JSON helpers for request bodies and response messages.
//!
//! Most OpenAI-like protocols want a JSON object body with the user's
//! `extra_body` merged in, and most streams are one JSON document per message.

use serde_json::{Map, Value};

/// What went wrong building or reading JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// `extra_body` is not valid JSON.
    #[error("extra_body is not valid JSON: {source} (extra_body: {excerpt})")]
    ExtraBodyNotJson {
        /// The parser's complaint.
        source: serde_json::Error,
        /// The start of the offending text.
        excerpt: String,
    },
    /// `extra_body` is valid JSON but not an object.
    #[error("extra_body must be a JSON object, found {found} (extra_body: {excerpt})")]
    ExtraBodyNotObject {
        /// The JSON type found instead: `array`, `string`, ...
        found: &'static str,
        /// The start of the offending text.
        excerpt: String,
    },
    /// A temperature that cannot be sent: negative, NaN or infinite.
    #[error("temperature must be a finite number >= 0, got {0}")]
    BadTemperature(f32),
    /// The body passed to [`body_with_extra`] is not an object.
    #[error("request body must be a JSON object, found {found}")]
    BodyNotObject {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A response message is not valid JSON.
    #[error("response message is not valid JSON: {source} (message: {excerpt})")]
    MessageNotJson {
        /// The parser's complaint.
        source: serde_json::Error,
        /// The start of the offending message.
        excerpt: String,
    },
}

/// Lets `?` turn a [`JsonError`] into the `String` errors of the adapter
/// traits.
impl From<JsonError> for String {
    fn from(e: JsonError) -> String {
        e.to_string()
    }
}

/// The JSON type name of `v`, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// At most 120 bytes of `bytes` as text, cut on a character boundary, so an
/// error message can show what it failed on without carrying a whole body.
pub fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= MAX {
        return text.into_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Merge the JSON object `extra_body` into `body`.
///
/// Fields of `extra_body` win. Where both sides hold an object under the same
/// key, the objects are merged the same way, so `{"stream_options":
/// {"continuous_usage_stats": true}}` adds to the adapter's `stream_options`
/// rather than replacing it.
pub fn merge_extra_body(body: &mut Map<String, Value>, extra_body: &str) -> Result<(), JsonError> {
    let extra: Value =
        serde_json::from_str(extra_body).map_err(|source| JsonError::ExtraBodyNotJson {
            source,
            excerpt: excerpt(extra_body.as_bytes()),
        })?;
    match extra {
        Value::Object(extra) => {
            merge_objects(body, extra);
            Ok(())
        }
        other => Err(JsonError::ExtraBodyNotObject {
            found: type_name(&other),
            excerpt: excerpt(extra_body.as_bytes()),
        }),
    }
}

fn merge_objects(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_objects(existing, incoming)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Serialise the JSON object `body` with `extra_body` (when given) merged in,
/// ready for [`crate::HttpRequest::body`].
pub fn body_with_extra(body: Value, extra_body: Option<&str>) -> Result<Vec<u8>, JsonError> {
    let mut map = match body {
        Value::Object(map) => map,
        other => {
            return Err(JsonError::BodyNotObject {
                found: type_name(&other),
            });
        }
    };
    if let Some(extra) = extra_body {
        merge_extra_body(&mut map, extra)?;
    }
    // Serialising a Value whose keys are strings cannot fail.
    Ok(serde_json::to_vec(&Value::Object(map)).unwrap_or_default())
}

/// Parse one response message as JSON.
pub fn parse_message(message: &[u8]) -> Result<Value, JsonError> {
    serde_json::from_slice(message).map_err(|source| JsonError::MessageNotJson {
        source,
        excerpt: excerpt(message),
    })
}

/// The string at a JSON pointer (`/choices/0/text`), if there is one.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer)?.as_str()
}

/// The non-negative integer at a JSON pointer, if it fits a `u32`.
pub fn u32_at(value: &Value, pointer: &str) -> Option<u32> {
    value
        .pointer(pointer)?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
}

/// A tokenize endpoint's answer as a count: the body of a `2xx` answer holding `{"count": n}`
/// (vLLM, SGLang), `{"tokens": [...]}` (llama.cpp, SGLang) or a bare array of tokens (TGI).
/// Anything else is an error that says what the server answered.
pub fn tokenize_count(endpoint: &str, status: u16, body: &[u8]) -> Result<u32, String> {
    if !(200..300).contains(&status) {
        return Err(format!(
            "{endpoint} answered HTTP {status}: {}",
            excerpt(body)
        ));
    }
    let value = parse_message(body).map_err(|e| format!("{endpoint}: {e}"))?;
    let n = match &value {
        Value::Array(tokens) => Some(tokens.len()),
        v => u32_at(v, "/count")
            .map(|n| n as usize)
            .or_else(|| v.get("tokens").and_then(Value::as_array).map(Vec::len)),
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{endpoint} answered no count: {}", excerpt(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokenize_counts_from_every_shape() {
        let vllm = br#"{"count":11,"max_model_len":2048,"tokens":[1,2],"token_strs":null}"#;
        assert_eq!(tokenize_count("/tokenize", 200, vllm), Ok(11));
        assert_eq!(
            tokenize_count("/tokenize", 200, br#"{"tokens":[5,6,7]}"#),
            Ok(3)
        );
        let tgi =
            br#"[{"id":1,"text":"a","start":0,"stop":1},{"id":2,"text":"b","start":1,"stop":2}]"#;
        assert_eq!(tokenize_count("/tokenize", 200, tgi), Ok(2));
        let err = tokenize_count("/tokenize", 404, b"Not Found").unwrap_err();
        assert!(
            err.contains("HTTP 404") && err.contains("Not Found"),
            "{err}"
        );
        let err = tokenize_count("/tokenize", 200, br#"{"detail":"x"}"#).unwrap_err();
        assert!(err.contains("no count"), "{err}");
        assert!(tokenize_count("/tokenize", 200, b"<html>").is_err());
    }

    #[test]
    fn extra_body_fields_win_and_objects_merge() {
        let body = json!({"model": "m", "stream_options": {"include_usage": true}, "n": 1});
        let out = body_with_extra(
            body,
            Some(r#"{"n": 2, "stream_options": {"continuous_usage_stats": true}, "x": [1]}"#),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"model": "m", "n": 2, "x": [1],
                   "stream_options": {"include_usage": true, "continuous_usage_stats": true}})
        );
    }

    #[test]
    fn extra_body_that_is_not_an_object_is_a_clear_error() {
        let err = body_with_extra(json!({}), Some("[1, 2]")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "extra_body must be a JSON object, found array (extra_body: [1, 2])"
        );
        let err = body_with_extra(json!({}), Some("{nope")).unwrap_err();
        assert!(
            err.to_string().starts_with("extra_body is not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn body_must_be_an_object() {
        let err = body_with_extra(json!("x"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "request body must be a JSON object, found string"
        );
    }

    #[test]
    fn pointers_pick_values() {
        let v = parse_message(br#"{"choices":[{"text":"hi"}],"usage":{"n":7,"big":5000000000}}"#)
            .unwrap();
        assert_eq!(str_at(&v, "/choices/0/text"), Some("hi"));
        assert_eq!(u32_at(&v, "/usage/n"), Some(7));
        assert_eq!(u32_at(&v, "/usage/big"), None);
        assert_eq!(str_at(&v, "/choices/1/text"), None);
    }

    #[test]
    fn excerpt_cuts_on_a_char_boundary() {
        let long = "é".repeat(100);
        let e = excerpt(long.as_bytes());
        assert!(e.ends_with("..."));
        assert!(e.len() <= 123);
        assert!(parse_message(b"not json").is_err());
    }
}

/// The sampling temperature as a JSON number, written as the user typed it:
/// widening the `f32` directly would send 0.7 as 0.699999988079071.
pub fn temperature(t: f32) -> Result<Value, JsonError> {
    if !t.is_finite() || t < 0.0 {
        return Err(JsonError::BadTemperature(t));
    }
    // The shortest decimal that reads back as `t` always parses as an f64.
    let shortest: f64 = t
        .to_string()
        .parse()
        .map_err(|_| JsonError::BadTemperature(t))?;
    Ok(Value::from(shortest))
}

#[cfg(test)]
mod temperature_tests {
    use super::*;

    #[test]
    fn shortest_form_and_bad_values() {
        assert_eq!(temperature(0.7).unwrap().to_string(), "0.7");
        assert_eq!(temperature(0.0).unwrap().to_string(), "0.0");
        assert!(temperature(-0.5).is_err());
        assert!(temperature(f32::NAN).is_err());
        assert!(temperature(f32::INFINITY).is_err());
    }
}
