//! An llm-loadtest adapter for "tinyjsonl", a deliberately small protocol:
//!
//! Request: `POST /api/complete` with `{"input": "...", "limit": N}` (plus
//! `"temp"` when a temperature is set).
//!
//! Response: newline-delimited JSON, one object per line:
//! - `{"t": "text"}` — generated text (a delta, not cumulative);
//! - `{"think": "text"}` — reasoning text;
//! - `{"end": "length", "in": 9, "out": 16}` — the last line: finish reason
//!   and token counts;
//! - `{"fault": "message"}` — the server failed mid-stream.
//!
//! A body that ends without the `end` line is reported as an error event by
//! `finish`, so a truncated response is never mistaken for a complete one.

use llm_loadtest_sdk::json::{body_with_extra, parse_message, str_at, u32_at};
use llm_loadtest_sdk::serde_json::{Value, json};
use llm_loadtest_sdk::{
    Adapter, AdapterInfo, Event, Framing, GenerationRequest, HttpRequest, Level, Prompt,
    StreamParser, Usage, log,
};

/// The tinyjsonl adapter.
pub struct TinyJsonl;

impl Adapter for TinyJsonl {
    type Parser = TinyJsonlParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "tinyjsonl".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The tinyjsonl NDJSON protocol".into(),
            framing: Framing::Ndjson,
            default_path: "/api/complete".into(),
            capabilities: vec!["completions".into(), "usage".into(), "reasoning".into()],
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        let input = match &req.prompt {
            Prompt::Text(text) => text.clone(),
            Prompt::Chat(messages) => {
                // The protocol has no roles: fold the conversation into one
                // prompt, as a user of this server would.
                log(Level::Debug, "tinyjsonl: folding a chat into one prompt");
                messages
                    .iter()
                    .map(|m| format!("{}: {}", m.role, m.content))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        let mut body = json!({"input": input, "limit": req.max_tokens});
        if let Some(t) = req.temperature {
            body["temp"] = json!(t);
        }
        let body = body_with_extra(body, req.extra_body.as_deref())?;
        // The protocol always streams; a non-streaming run gets the same
        // lines and reads them the same way.
        Ok(HttpRequest::post_json(
            "/api/complete",
            body,
            Framing::Ndjson,
        ))
    }
}

/// Reads one tinyjsonl response.
#[derive(Debug, Default)]
pub struct TinyJsonlParser {
    ended: bool,
}

impl StreamParser for TinyJsonlParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        let line = parse_message(message)?;
        if !line.is_object() {
            return Err(format!(
                "tinyjsonl: expected a JSON object per line, got {line}"
            ));
        }
        let mut events = Vec::new();
        if let Some(think) = str_at(&line, "/think").filter(|t| !t.is_empty()) {
            events.push(Event::reasoning(think));
        }
        if let Some(text) = str_at(&line, "/t").filter(|t| !t.is_empty()) {
            events.push(Event::token(text));
        }
        if let Some(fault) = line.get("fault") {
            events.push(Event::Error(match fault {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
        if let Some(reason) = str_at(&line, "/end") {
            self.ended = true;
            events.push(Event::Finish(reason.to_string()));
            events.push(Event::Usage(Usage {
                prompt_tokens: u32_at(&line, "/in"),
                completion_tokens: u32_at(&line, "/out"),
                cached_tokens: None,
            }));
            events.push(Event::Done);
        }
        Ok(events)
    }

    fn finish(&mut self) -> Result<Vec<Event>, String> {
        if self.ended {
            Ok(Vec::new())
        } else {
            Ok(vec![Event::Error(
                "tinyjsonl: the body ended without an \"end\" line".into(),
            )])
        }
    }
}

llm_loadtest_sdk::register_adapter!(TinyJsonl);
