//! Reading SGLang `/generate` responses: SSE messages whose `text` is the
//! whole text so far, with `meta_info`, and whole non-streaming bodies of the
//! same shape.

use std::borrow::Cow;

use llm_loadtest_sdk::json::excerpt;
use llm_loadtest_sdk::{Event, StreamParser, Usage};
use serde::Deserialize;
use serde_json::Value;

use crate::text_delta::{Start, TextDelta};

/// One message. Unknown fields (`meta_info.id`, `e2e_latency`, logprobs,
/// ...) are ignored.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    meta_info: Option<MetaInfo>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct MetaInfo {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    /// The running total, repeated on every message.
    #[serde(default)]
    completion_tokens: Option<u32>,
    #[serde(default)]
    cached_tokens: Option<u32>,
    /// `null` until the last message; then an object
    /// (`{"type": "length", "length": 16}`, `{"type": "stop", "matched":
    /// 128009}`, `{"type": "abort", "message": ...}`) or, from older
    /// servers, a string.
    #[serde(default)]
    finish_reason: Option<Value>,
}

/// Parses one SGLang response. It keeps the text so far, because every
/// message repeats it.
#[derive(Debug)]
pub struct SglangParser {
    text: TextDelta,
}

impl Default for SglangParser {
    fn default() -> Self {
        SglangParser {
            text: TextDelta::new(Start::Cumulative),
        }
    }
}

impl StreamParser for SglangParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        if !is_object(message) {
            return Err(format!(
                "an SGLang /generate message must be a JSON object (message: {})",
                excerpt(message)
            ));
        }
        let m: Message<'_> = serde_json::from_slice(message).map_err(|e| {
            format!(
                "not an SGLang /generate message: {e} (message: {})",
                excerpt(message)
            )
        })?;
        if m.text.is_none() && m.meta_info.is_none() && m.error.is_none() {
            return Err(format!(
                "an SGLang /generate message has none of `text`, `meta_info` or `error` \
                 (message: {})",
                excerpt(message)
            ));
        }
        let mut events = Vec::new();
        if let Some(error) = &m.error {
            events.push(Event::Error(error_text(error)));
        }
        if let Some(text) = m.text.as_deref()
            && let Some(new) = self.text.next(text)
        {
            events.push(Event::token(new));
        }
        if let Some(meta) = m.meta_info {
            if meta.prompt_tokens.is_some() || meta.completion_tokens.is_some() {
                // Running totals on every message: the host keeps the last.
                events.push(Event::Usage(Usage {
                    prompt_tokens: meta.prompt_tokens,
                    completion_tokens: meta.completion_tokens,
                    cached_tokens: meta.cached_tokens,
                }));
            }
            if let Some(reason) = &meta.finish_reason {
                finish_events(reason, &mut events)?;
            }
        }
        Ok(events)
    }
}

/// The events of a non-null `finish_reason`. An abort (the server gave up on
/// the request) is also an error: its output is not a complete answer.
fn finish_events(reason: &Value, events: &mut Vec<Event>) -> Result<(), String> {
    match reason {
        Value::String(kind) => events.push(Event::Finish(kind.clone())),
        Value::Object(obj) => {
            let Some(kind) = obj.get("type").and_then(Value::as_str) else {
                return Err(format!(
                    "an SGLang finish_reason object has no string `type`: {}",
                    excerpt(reason.to_string().as_bytes())
                ));
            };
            if kind == "abort" {
                let why = match obj.get("message") {
                    Some(Value::String(m)) => m.clone(),
                    Some(other) => other.to_string(),
                    None => "no message".to_string(),
                };
                events.push(Event::Error(format!(
                    "the server aborted the request: {why}"
                )));
            }
            events.push(Event::Finish(kind.to_string()));
        }
        other => {
            return Err(format!(
                "an SGLang finish_reason must be an object or a string, found {}",
                excerpt(other.to_string().as_bytes())
            ));
        }
    }
    Ok(())
}

/// `{"error": {"message": ...}}` (SGLang's style) as its message; a bare
/// string as itself; anything else verbatim.
fn error_text(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(obj) => match obj.get("message") {
            Some(Value::String(m)) => m.clone(),
            _ => error.to_string(),
        },
        other => other.to_string(),
    }
}

/// serde reads a struct from a JSON array too (fields by position), which no
/// server sends: only an object is a message.
fn is_object(message: &[u8]) -> bool {
    message.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}
