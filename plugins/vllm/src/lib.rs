//! llm-loadtest adapter for vLLM's OpenAI-compatible server.
//!
//! The same requests and parsing as the generic `openai` adapter, plus vLLM's
//! sampling extensions: `ignore_eos` (generate exactly `max_tokens`, the
//! usual benchmark setting) and `min_tokens`.

// The OpenAI protocol code is compiled here from the openai plugin's source
// rather than linked: linking that crate would bring its component exports
// along, and one component cannot export the adapter functions twice.
#[path = "../../openai/src/protocol/mod.rs"]
pub mod protocol;

use llm_loadtest_sdk::{
    Adapter, AdapterInfo, Framing, GenerationRequest, HttpRequest, Tokenize, TokenizeQuery,
    TokenizeStep,
};
use protocol::parse::OpenAiParser;
use protocol::request::{self, Extensions};

/// The vLLM adapter.
pub struct Vllm;

impl Adapter for Vllm {
    type Parser = OpenAiParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "vllm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "vLLM's OpenAI-compatible server, with ignore_eos and min_tokens".into(),
            framing: Framing::Sse,
            default_path: request::COMPLETIONS_PATH.into(),
            capabilities: [
                "completions",
                "chat",
                "usage",
                "reasoning",
                "ignore-eos",
                "min-tokens",
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        request::build(
            req,
            Extensions {
                ignore_eos: true,
                min_tokens: true,
            },
        )
    }
}

impl Tokenize for Vllm {
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

llm_loadtest_sdk::register_adapter!(Vllm, tokenizer);
