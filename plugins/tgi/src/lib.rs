//! llm-loadtest adapter for Hugging Face Text Generation Inference's native
//! API.
//!
//! Requests go to `POST /generate_stream` (SSE), or `/generate` with
//! `--no-stream`, as `{"inputs", "parameters": {"max_new_tokens", "details":
//! true, ...}}` (see [`request::build`] for temperature and what TGI lacks).
//! Each stream event carries one token: a token event with one token count,
//! except special tokens, which are not output text ([`parse`]). The last
//! event's `details` give usage (`input_length`, `generated_tokens`) and the
//! finish reason (`length`, `eos_token`, `stop_sequence`, as TGI names
//! them); `{"error", "error_type"}` events are errors; `:` keep-alive lines
//! are dropped by the host's SSE framing.

pub mod parse;
pub mod request;
// Shared with the sglang adapter by path: linking that crate would bring
// its component exports along.
#[path = "../../sglang/src/chat_text.rs"]
pub mod chat_text;
#[path = "../../sglang/src/tokenize.rs"]
pub mod tokenize;

use llm_loadtest_sdk::{
    Adapter, AdapterInfo, Framing, GenerationRequest, HttpRequest, Tokenize, TokenizeQuery,
    TokenizeStep,
};
use parse::TgiParser;

/// The TGI native adapter.
pub struct Tgi;

impl Adapter for Tgi {
    type Parser = TgiParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "tgi".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hugging Face TGI's native /generate_stream".into(),
            framing: Framing::Sse,
            default_path: request::STREAM_PATH.into(),
            capabilities: ["completions", "chat", "usage"].map(String::from).to_vec(),
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        request::build(req)
    }
}

impl Tokenize for Tgi {
    fn build_tokenize_request(query: &TokenizeQuery) -> Result<HttpRequest, String> {
        tokenize::build(query, "inputs")
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

llm_loadtest_sdk::register_adapter!(Tgi, tokenizer);
