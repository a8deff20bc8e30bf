//! Reading TGI responses: `/generate_stream` SSE events `{"token": {"id",
//! "text", "special"}, "generated_text", "details"}`, `{"error",
//! "error_type"}` events after a 200, and whole `/generate` bodies
//! `{"generated_text", "details"}`.
//!
//! Special tokens (`special: true`, e.g. the end-of-sequence token) are not
//! output text, as in TGI's own `generated_text`: their text is dropped and
//! they are not timed as token arrivals. TGI still counts them in
//! `details.generated_tokens`, which becomes the usage, the same way an
//! OpenAI server's `completion_tokens` counts an end-of-sequence token that
//! streams as empty text.

use std::borrow::Cow;

use llm_loadtest_sdk::json::excerpt;
use llm_loadtest_sdk::{Event, StreamParser, TokenDelta, Usage};
use serde::Deserialize;
use serde_json::Value;

/// One event or whole body. Unknown fields (`index`, `logprob`,
/// `top_tokens`, `seed`, `prefill`, `tokens`, ...) are ignored.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    token: Option<Token<'a>>,
    /// `null` until the last stream event, which repeats all the text; the
    /// whole text in a non-streaming body.
    #[serde(default, borrow)]
    generated_text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    details: Option<Details<'a>>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, borrow)]
    error_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Token<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct Details<'a> {
    /// `length`, `eos_token` or `stop_sequence`.
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    generated_tokens: Option<u32>,
    /// Streams only.
    #[serde(default)]
    input_length: Option<u32>,
}

/// Parses one TGI response. It keeps no state: every stream event carries
/// one new token, and the last one the totals.
#[derive(Debug, Default)]
pub struct TgiParser;

impl StreamParser for TgiParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        // Early TGI versions answered `/generate` with a one-element list.
        let first = message.iter().find(|b| !b.is_ascii_whitespace());
        let m: Message<'_> = if first == Some(&b'[') {
            let mut list: Vec<Message<'_>> =
                serde_json::from_slice(message).map_err(not_tgi(message))?;
            if list.len() != 1 {
                return Err(format!(
                    "a TGI response list must hold one answer, found {} (message: {})",
                    list.len(),
                    excerpt(message)
                ));
            }
            list.remove(0)
        } else {
            serde_json::from_slice(message).map_err(not_tgi(message))?
        };
        if m.token.is_none() && m.generated_text.is_none() && m.error.is_none() {
            return Err(format!(
                "a TGI response has none of `token`, `generated_text` or `error` (message: {})",
                excerpt(message)
            ));
        }
        let mut events = Vec::new();
        if let Some(error) = &m.error {
            let text = match error {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            events.push(Event::Error(match &m.error_type {
                Some(kind) => format!("{text} (error_type {kind})"),
                None => text,
            }));
        }
        match (&m.token, &m.generated_text) {
            (Some(token), _) => {
                if !token.special && !token.text.is_empty() {
                    events.push(Event::Token(TokenDelta {
                        text: token.text.clone().into_owned(),
                        tokens: Some(1),
                    }));
                }
            }
            // A non-streaming body: all the text at once.
            (None, Some(text)) if !text.is_empty() => events.push(Event::token(text.as_ref())),
            (None, _) => {}
        }
        if let Some(details) = &m.details {
            if details.input_length.is_some() || details.generated_tokens.is_some() {
                events.push(Event::Usage(Usage {
                    prompt_tokens: details.input_length,
                    completion_tokens: details.generated_tokens,
                    cached_tokens: None,
                }));
            }
            if let Some(reason) = &details.finish_reason {
                events.push(Event::Finish(reason.clone().into_owned()));
            }
        }
        // `generated_text` is set only on the last event (or the whole
        // body), so it is TGI's end marker, with or without details.
        if m.generated_text.is_some() {
            events.push(Event::Done);
        }
        Ok(events)
    }
}

fn not_tgi(message: &[u8]) -> impl FnOnce(serde_json::Error) -> String + '_ {
    move |e| format!("not a TGI response: {e} (message: {})", excerpt(message))
}
