//! Reading OpenAI-style responses: streamed chunks (completions and chat)
//! and whole non-streaming bodies, as vLLM, llama.cpp, llama-cpp-python,
//! SGLang and GuideLLM's mock write them.

use std::borrow::Cow;

use llm_loadtest_sdk::json::excerpt;
use llm_loadtest_sdk::{Event, StreamParser, TokenDelta, Usage};
use serde::Deserialize;

/// One chunk or whole body. Unknown fields (vLLM's `stop_reason`,
/// `token_ids`, llama.cpp's `timings`, ...) are ignored.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<UsageJson>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    /// Completions: the new text.
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    /// Streamed chat: the new content / reasoning.
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    /// Non-streaming chat: the whole reply.
    #[serde(default, borrow)]
    message: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    /// vLLM's reasoning parsers.
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    /// DeepSeek, SGLang and llama.cpp.
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UsageJson {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u32>,
}

/// Parses one OpenAI-style response. It keeps no state: every chunk carries
/// only new text, and usage chunks carry totals (with
/// `continuous_usage_stats` every chunk does, and the host keeps the last).
#[derive(Debug, Default)]
pub struct OpenAiParser;

impl StreamParser for OpenAiParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        parse_message(message)
    }

    fn feed_into(&mut self, message: &[u8], events: &mut Vec<Event>) -> Result<(), String> {
        parse_into(message, events)
    }
}

/// The events in one chunk or whole body.
pub fn parse_message(message: &[u8]) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    parse_into(message, &mut events)?;
    Ok(events)
}

/// The events in one chunk or whole body, appended to `events` (left as they were on an
/// error: nothing is pushed before the message has parsed).
fn parse_into(message: &[u8], events: &mut Vec<Event>) -> Result<(), String> {
    let chunk: Chunk<'_> = serde_json::from_slice(message).map_err(|e| {
        format!(
            "not an OpenAI response chunk: {e} (message: {})",
            excerpt(message)
        )
    })?;
    if let Some(error) = &chunk.error {
        events.push(Event::Error(error_text(error)));
    }
    // Only the first choice is timed; GuideLLM's mock numbers its single
    // choice by token, so the position matters, not the `index` field.
    if let Some(choice) = chunk.choices.as_deref().and_then(<[Choice<'_>]>::first) {
        let before = events.len();
        let parts = choice.delta.as_ref().or(choice.message.as_ref());
        if let Some(parts) = parts {
            let reasoning = parts
                .reasoning
                .as_ref()
                .or(parts.reasoning_content.as_ref());
            push_text(events, reasoning, Event::Reasoning);
            push_text(events, parts.content.as_ref(), Event::Token);
        }
        push_text(events, choice.text.as_ref(), Event::Token);
        if events.len() == before {
            // A choice with no text: a byte-level token that completes no character yet, a
            // role-only first chat chunk, a finish-only chunk. The contract's mark for it is
            // an empty token, which the host times only as vLLM's client does.
            events.push(Event::Token(TokenDelta {
                text: String::new(),
                tokens: None,
            }));
        }
        if let Some(reason) = &choice.finish_reason {
            events.push(Event::Finish(reason.clone().into_owned()));
        }
    }
    if let Some(u) = chunk.usage {
        events.push(Event::Usage(Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
        }));
    }
    Ok(())
}

/// Text events only for text: a chunk whose choice has none gets the one empty
/// token above, not one per empty field.
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

/// `{"error": {"message", "type", "code"}}` as one line; servers that send a
/// bare string or another shape get it verbatim.
fn error_text(error: &serde_json::Value) -> String {
    let Some(obj) = error.as_object() else {
        return match error.as_str() {
            Some(s) => s.to_string(),
            None => error.to_string(),
        };
    };
    let message = obj
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| error.to_string());
    let mut detail = Vec::new();
    if let Some(kind) = obj.get("type").and_then(|t| t.as_str()) {
        detail.push(format!("type {kind}"));
    }
    if let Some(code) = obj.get("code").filter(|c| !c.is_null()) {
        detail.push(format!("code {code}"));
    }
    if detail.is_empty() {
        message
    } else {
        format!("{message} ({})", detail.join(", "))
    }
}
