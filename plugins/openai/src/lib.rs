//! llm-loadtest adapter for any OpenAI-compatible server.
//!
//! A text prompt is sent to `POST /v1/completions`, a chat to
//! `POST /v1/chat/completions`, streamed as SSE with
//! `stream_options: {"include_usage": true}` so the server reports token
//! counts. The parser reads completions (`choices[0].text`), chat
//! (`choices[0].delta.content`, `delta.reasoning` / `delta.reasoning_content`),
//! usage wherever the server puts it, finish reasons, `{"error": ...}` events
//! after a 200, and whole non-streaming bodies.

pub mod protocol;

use llm_loadtest_sdk::{
    Adapter, AdapterInfo, Framing, GenerationRequest, HttpRequest, Tokenize, TokenizeQuery,
    TokenizeStep,
};
use protocol::parse::OpenAiParser;
use protocol::request::{self, Extensions};

/// The generic OpenAI-compatible adapter.
pub struct OpenAi;

impl Adapter for OpenAi {
    type Parser = OpenAiParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "openai".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Any OpenAI-compatible server: /v1/completions and /v1/chat/completions"
                .into(),
            framing: Framing::Sse,
            default_path: request::COMPLETIONS_PATH.into(),
            capabilities: ["completions", "chat", "usage", "reasoning", "ignore-eos"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        // `ignore_eos` only when asked: llama.cpp, vLLM and SGLang honour it, and a server
        // that rejects unknown fields then says so instead of silently stopping short.
        request::build(
            req,
            Extensions {
                ignore_eos: true,
                min_tokens: false,
            },
        )
    }
}

impl Tokenize for OpenAi {
    fn build_tokenize_request(query: &TokenizeQuery) -> Result<HttpRequest, String> {
        protocol::tokenize::build(query)
    }

    fn parse_tokenize_response(
        query: &TokenizeQuery,
        step: u32,
        status: u16,
        body: &[u8],
    ) -> Result<TokenizeStep, String> {
        protocol::tokenize::parse(query, step, status, body)
    }
}

llm_loadtest_sdk::register_adapter!(OpenAi, tokenizer);
