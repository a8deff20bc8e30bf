//! llm-loadtest adapter for SGLang's native `POST /generate`.
//!
//! Requests: `{"text", "sampling_params": {"max_new_tokens", "min_new_tokens",
//! "ignore_eos", "temperature"}, "stream"}`; a chat prompt is flattened into
//! one text (`role: content` lines, then `assistant:`; see [`chat_text`]),
//! because the native endpoint takes text only. To benchmark SGLang's chat
//! template, use the `openai` adapter against its `/v1/chat/completions`.
//!
//! Responses: SSE messages whose `text` is the whole text so far, turned
//! into deltas ([`text_delta`]); `meta_info` carries running token counts
//! (emitted as usage on every message; the host keeps the last) and, on the
//! last message, `finish_reason` (`{"type": "length", ...}`, a string from
//! older servers; an `abort` is also an error); `{"error": {"message"}}`
//! after a 200 is an error event; `data: [DONE]` ends the stream. A
//! non-streaming body has the same shape.

pub mod chat_text;
pub mod parse;
pub mod request;
pub mod text_delta;
pub mod tokenize;

use llm_loadtest_sdk::{
    Adapter, AdapterInfo, Framing, GenerationRequest, HttpRequest, Tokenize, TokenizeQuery,
    TokenizeStep,
};
use parse::SglangParser;

/// The SGLang native adapter.
pub struct Sglang;

impl Adapter for Sglang {
    type Parser = SglangParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "sglang".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "SGLang's native /generate: cumulative SSE text with meta_info".into(),
            framing: Framing::Sse,
            default_path: request::GENERATE_PATH.into(),
            capabilities: ["completions", "chat", "usage", "ignore-eos", "min-tokens"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        request::build(req)
    }
}

impl Tokenize for Sglang {
    fn build_tokenize_request(query: &TokenizeQuery) -> Result<HttpRequest, String> {
        tokenize::build(query, "prompt")
    }

    fn parse_tokenize_response(
        _query: &TokenizeQuery,
        step: u32,
        status: u16,
        body: &[u8],
    ) -> Result<TokenizeStep, String> {
        tokenize::parse(step, status, body)
    }
}

llm_loadtest_sdk::register_adapter!(Sglang, tokenizer);
