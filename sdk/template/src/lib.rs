//! An llm-loadtest server adapter.
//!
//! It speaks an example protocol; change `build_request` and `feed` to your
//! server's. The example: `POST /generate` with `{"prompt", "max_tokens",
//! "stream": true}`, answered by server-sent events whose `data:` payloads are
//! `{"text": "..."}` (new text) and, last, `{"finish_reason": "stop",
//! "prompt_tokens": 9, "completion_tokens": 16}`.

use llm_loadtest_sdk::json::{body_with_extra, parse_message, str_at, u32_at};
use llm_loadtest_sdk::serde_json::json;
use llm_loadtest_sdk::{
    Adapter, AdapterInfo, Event, Framing, GenerationRequest, HttpRequest, Prompt, StreamParser,
    Usage,
};

#[cfg(test)]
mod tests;

/// The adapter. It is never instantiated: the SDK calls its functions.
pub struct MyServer;

impl Adapter for MyServer {
    type Parser = MyParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Adapter for my server's /generate API".into(),
            // How the host splits a streamed response into messages for `feed`.
            framing: Framing::Sse,
            default_path: "/generate".into(),
            capabilities: vec!["completions".into(), "usage".into()],
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        let Prompt::Text(prompt) = &req.prompt else {
            return Err("this adapter sends text prompts only, not chats".into());
        };
        let mut body = json!({
            "prompt": prompt,
            "max_tokens": req.max_tokens,
            "stream": req.stream,
        });
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        // Merges the user's `--extra-body` JSON object; `?` reports a bad one.
        let body = body_with_extra(body, req.extra_body.as_deref())?;
        let framing = if req.stream {
            Framing::Sse
        } else {
            Framing::WholeBody
        };
        Ok(HttpRequest::post_json("/generate", body, framing))
    }
}

/// Reads one response. The host creates one per request and feeds it one
/// message at a time (the SSE `[DONE]` sentinel and comments never arrive).
#[derive(Default)]
pub struct MyParser;

impl StreamParser for MyParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        let v = parse_message(message)?;
        let mut events = Vec::new();
        if let Some(error) = str_at(&v, "/error") {
            events.push(Event::Error(error.to_string()));
        }
        // Empty text is not a token: every token event is timed.
        if let Some(text) = str_at(&v, "/text").filter(|t| !t.is_empty()) {
            events.push(Event::token(text));
        }
        if let Some(reason) = str_at(&v, "/finish_reason") {
            events.push(Event::Finish(reason.to_string()));
            events.push(Event::Usage(Usage {
                prompt_tokens: u32_at(&v, "/prompt_tokens"),
                completion_tokens: u32_at(&v, "/completion_tokens"),
                cached_tokens: None,
            }));
        }
        Ok(events)
    }
}

llm_loadtest_sdk::register_adapter!(MyServer);
