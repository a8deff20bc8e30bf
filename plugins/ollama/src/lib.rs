//! llm-loadtest adapter for Ollama's native API.
//!
//! A text prompt goes to `POST /api/generate`, a chat to `POST /api/chat`,
//! both streamed as NDJSON (or whole bodies with `--no-stream`). Output
//! length is `options.num_predict`; see [`request::build`] for `ignore_eos`
//! (Ollama has none; the simulator honours `options.ignore_eos`). The parser
//! reads `response` / `message.content` deltas, `thinking` as reasoning, and
//! the closing `done: true` line: `prompt_eval_count` and `eval_count` as
//! usage, `done_reason` as the finish reason, then done. `{"error": ...}`
//! lines are error events.
//!
//! Ollama applies the model's prompt template on `/api/generate`; send
//! `--extra-body '{"raw": true}'` to send prompts as they are.

pub mod parse;
pub mod request;
// Shared with the sglang adapter by path: linking that crate would bring
// its component exports along.

use llm_loadtest_sdk::{Adapter, AdapterInfo, Framing, GenerationRequest, HttpRequest};
use parse::OllamaParser;

/// The Ollama native adapter.
pub struct Ollama;

impl Adapter for Ollama {
    type Parser = OllamaParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "ollama".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Ollama's native /api/generate and /api/chat (NDJSON)".into(),
            framing: Framing::Ndjson,
            default_path: request::GENERATE_PATH.into(),
            capabilities: ["completions", "chat", "usage", "reasoning"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        request::build(req)
    }
}

llm_loadtest_sdk::register_adapter!(Ollama);
