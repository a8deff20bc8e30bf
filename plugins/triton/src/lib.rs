//! llm-loadtest adapter for Triton Inference Server's generate extension.
//!
//! Requests go to `POST /v2/models/{model}/generate_stream` (SSE), or
//! `/generate` with `--no-stream`; the body is `{"text_input", "max_tokens",
//! "stream", ...}` (see [`request::build`] for what each backend reads). The
//! parser reads `text_output`, which is a delta from TensorRT-LLM and
//! cumulative from some backends: the second message that adds text decides
//! which ([`text_delta`]). An `{"error": ...}` message after a 200 is an
//! error event. Triton sends no finish reason, no token counts and no
//! `[DONE]`: a body that ends cleanly after output is complete (`finish`
//! emits done), and output tokens are counted by the host's tokenizer.

pub mod parse;
pub mod request;
// Shared with the sglang adapter by path: linking that crate would bring
// its component exports along.
#[path = "../../sglang/src/chat_text.rs"]
pub mod chat_text;
#[path = "../../sglang/src/text_delta.rs"]
pub mod text_delta;

use llm_loadtest_sdk::{Adapter, AdapterInfo, Framing, GenerationRequest, HttpRequest};
use parse::TritonParser;

/// The Triton generate-extension adapter.
pub struct Triton;

impl Adapter for Triton {
    type Parser = TritonParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "triton".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Triton's generate extension: /v2/models/{model}/generate_stream".into(),
            framing: Framing::Sse,
            default_path: "/v2/models/{model}/generate_stream".into(),
            capabilities: ["completions", "chat", "ignore-eos", "min-tokens"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        request::build(req)
    }
}

llm_loadtest_sdk::register_adapter!(Triton);
