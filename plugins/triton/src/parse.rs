//! Reading Triton generate-extension responses: SSE messages
//! `{"model_name", "model_version", "text_output"}` whose text is a delta or
//! cumulative depending on the backend, `{"error": ...}` messages after a
//! 200, and whole non-streaming bodies of the same shape.

use std::borrow::Cow;

use llm_loadtest_sdk::json::excerpt;
use llm_loadtest_sdk::{Event, StreamParser};
use serde::Deserialize;
use serde_json::Value;

use crate::text_delta::{Start, TextDelta};

/// One message. Other output tensors a model may add (log-probs, token
/// counts) are ignored.
#[derive(Deserialize)]
struct Output<'a> {
    /// A one-element BYTES tensor is a string; some models return it as a
    /// one-element array.
    #[serde(default, borrow)]
    text_output: Option<TextOutput<'a>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TextOutput<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    List(Vec<Value>),
}

/// Parses one Triton response. It keeps the text so far (to detect and undo
/// cumulative text) and whether the stream went well, because Triton sends
/// no end marker: a body that ends cleanly after output, with no error, is
/// complete.
#[derive(Debug)]
pub struct TritonParser {
    text: TextDelta,
    saw_output: bool,
    saw_error: bool,
}

impl Default for TritonParser {
    fn default() -> Self {
        TritonParser {
            text: TextDelta::new(Start::Detect),
            saw_output: false,
            saw_error: false,
        }
    }
}

impl StreamParser for TritonParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        if !is_object(message) {
            return Err(format!(
                "a Triton generate response must be a JSON object (message: {})",
                excerpt(message)
            ));
        }
        let out: Output<'_> = serde_json::from_slice(message).map_err(|e| {
            format!(
                "not a Triton generate response: {e} (message: {})",
                excerpt(message)
            )
        })?;
        let mut events = Vec::new();
        if let Some(error) = &out.error {
            self.saw_error = true;
            events.push(Event::Error(match error {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
        match &out.text_output {
            Some(text) => {
                let text = one_text(text, message)?;
                self.saw_output = true;
                if let Some(new) = self.text.next(text) {
                    events.push(Event::token(new));
                }
            }
            None if out.error.is_none() => {
                return Err(format!(
                    "a Triton generate response has neither `text_output` nor `error` \
                     (message: {})",
                    excerpt(message)
                ));
            }
            None => {}
        }
        Ok(events)
    }

    /// Only a clean end of the body reaches here (the host reports a broken
    /// connection itself), so output without an error means complete.
    fn finish(&mut self) -> Result<Vec<Event>, String> {
        if self.saw_output && !self.saw_error {
            Ok(vec![Event::Done])
        } else {
            Ok(Vec::new())
        }
    }
}

fn one_text<'a>(text: &'a TextOutput<'_>, message: &[u8]) -> Result<&'a str, String> {
    match text {
        TextOutput::One(s) => Ok(s.as_ref()),
        TextOutput::List(items) => match items.as_slice() {
            [Value::String(s)] => Ok(s.as_str()),
            _ => Err(format!(
                "a Triton `text_output` must be a string or a one-string array, found {} \
                 items (message: {})",
                items.len(),
                excerpt(message)
            )),
        },
    }
}

/// serde reads a struct from a JSON array too (fields by position), which no
/// server sends: only an object is a message.
fn is_object(message: &[u8]) -> bool {
    message.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}
