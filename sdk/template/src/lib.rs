//! An llm-loadtest server adapter.
//!
//! It speaks an example protocol; change `build_request` and `feed` to your
//! server's. The example is Ollama's native generate API, which
//! `llm-loadtest sim` also serves, so the adapter can be tried end to end
//! at once: `POST /api/generate` with `{"model", "prompt", "stream": true,
//! "options": {"num_predict"}}`, answered by newline-delimited JSON:
//! `{"response": "The", "done": false}` lines, then a last line with
//! `"done": true`, `"done_reason"`, `"prompt_eval_count"` and `"eval_count"`.

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
            description: "Adapter for an Ollama-style /api/generate API".into(),
            // How the host splits a streamed response into messages for `feed`.
            framing: Framing::Ndjson,
            default_path: "/api/generate".into(),
            capabilities: vec!["completions".into(), "usage".into()],
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        let Prompt::Text(prompt) = &req.prompt else {
            return Err("this adapter sends text prompts only, not chats".into());
        };
        let mut options = json!({ "num_predict": req.max_tokens });
        if let Some(t) = req.temperature {
            options["temperature"] = json!(t);
        }
        let body = json!({
            "model": req.model,
            "prompt": prompt,
            "stream": req.stream,
            "options": options,
        });
        // Merges the user's `--extra-body` JSON object; `?` reports a bad one.
        let body = body_with_extra(body, req.extra_body.as_deref())?;
        let framing = if req.stream {
            Framing::Ndjson
        } else {
            Framing::WholeBody
        };
        Ok(HttpRequest::post_json("/api/generate", body, framing))
    }
}

/// Reads one response. The host creates one per request and feeds it one
/// message (here: one NDJSON line) at a time.
#[derive(Default)]
pub struct MyParser;

impl StreamParser for MyParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        let v = parse_message(message)?;
        let mut events = Vec::new();
        if let Some(error) = str_at(&v, "/error") {
            events.push(Event::Error(error.to_string()));
            return Ok(events);
        }
        // Empty text is not a token: every token event is timed.
        if let Some(text) = str_at(&v, "/response").filter(|t| !t.is_empty()) {
            events.push(Event::token(text));
        }
        if v["done"] == true {
            events.push(Event::Usage(Usage {
                prompt_tokens: u32_at(&v, "/prompt_eval_count"),
                completion_tokens: u32_at(&v, "/eval_count"),
                cached_tokens: None,
            }));
            let reason = str_at(&v, "/done_reason").unwrap_or("stop");
            events.push(Event::Finish(reason.to_string()));
            events.push(Event::Done);
        }
        Ok(events)
    }
}

llm_loadtest_sdk::register_adapter!(MyServer);
