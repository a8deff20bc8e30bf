//! Reading Ollama responses: NDJSON lines from `/api/generate` (`response`)
//! and `/api/chat` (`message.content`), the closing `done: true` line with
//! its counts, `{"error": ...}` lines, and whole non-streaming bodies (one
//! object with `done: true`).

use std::borrow::Cow;

use llm_loadtest_sdk::json::excerpt;
use llm_loadtest_sdk::{Event, StreamParser, TokenDelta, Usage};
use serde::Deserialize;
use serde_json::Value;

/// One line. Unknown fields (`model`, `created_at`, durations, `context`,
/// ...) are ignored.
#[derive(Deserialize)]
struct Line<'a> {
    /// `/api/generate`: the new text.
    #[serde(default, borrow)]
    response: Option<Cow<'a, str>>,
    /// `/api/generate` with a thinking model: the new reasoning text.
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    /// `/api/chat`: the new content and reasoning.
    #[serde(default, borrow)]
    message: Option<ChatMessage<'a>>,
    #[serde(default)]
    done: Option<bool>,
    #[serde(default, borrow)]
    done_reason: Option<Cow<'a, str>>,
    /// Absent when the whole prompt came from Ollama's cache.
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    eval_count: Option<u32>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChatMessage<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
}

/// Parses one Ollama response. It keeps no state: every line carries only
/// new text, and the last one the totals.
#[derive(Debug, Default)]
pub struct OllamaParser;

impl StreamParser for OllamaParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        if !is_object(message) {
            return Err(format!(
                "an Ollama response line must be a JSON object (line: {})",
                excerpt(message)
            ));
        }
        let line: Line<'_> = serde_json::from_slice(message).map_err(|e| {
            format!(
                "not an Ollama response line: {e} (line: {})",
                excerpt(message)
            )
        })?;
        if line.response.is_none()
            && line.message.is_none()
            && line.thinking.is_none()
            && line.done.is_none()
            && line.error.is_none()
        {
            return Err(format!(
                "an Ollama response line has none of `response`, `message`, `thinking`, \
                 `done` or `error` (line: {})",
                excerpt(message)
            ));
        }
        let mut events = Vec::new();
        if let Some(error) = &line.error {
            events.push(Event::Error(match error {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
        let (content, thinking) = match &line.message {
            Some(m) => (m.content.as_ref(), m.thinking.as_ref()),
            None => (line.response.as_ref(), line.thinking.as_ref()),
        };
        push_text(&mut events, thinking, Event::Reasoning);
        push_text(&mut events, content, Event::Token);
        if line.done == Some(true) {
            if line.prompt_eval_count.is_some() || line.eval_count.is_some() {
                events.push(Event::Usage(Usage {
                    prompt_tokens: line.prompt_eval_count,
                    completion_tokens: line.eval_count,
                    cached_tokens: None,
                }));
            }
            if let Some(reason) = line.done_reason {
                events.push(Event::Finish(reason.into_owned()));
            }
            events.push(Event::Done);
        }
        Ok(events)
    }
}

/// Empty text (the closing line's `"response": ""`) is not a token.
fn push_text(events: &mut Vec<Event>, text: Option<&Cow<'_, str>>, make: fn(TokenDelta) -> Event) {
    if let Some(text) = text
        && !text.is_empty()
    {
        events.push(make(TokenDelta {
            text: text.clone().into_owned(),
            tokens: None,
        }));
    }
}

/// serde reads a struct from a JSON array too (fields by position), which no
/// server sends: only an object is a message.
fn is_object(message: &[u8]) -> bool {
    message.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}
