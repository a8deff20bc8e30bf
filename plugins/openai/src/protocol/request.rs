//! Building `/v1/completions` and `/v1/chat/completions` requests.

use llm_loadtest_sdk::json::body_with_extra;
use llm_loadtest_sdk::{Framing, GenerationRequest, HttpRequest, Prompt};
use serde_json::{Map, Value, json};

/// Path of the text completions endpoint.
pub const COMPLETIONS_PATH: &str = "/v1/completions";
/// Path of the chat completions endpoint.
pub const CHAT_PATH: &str = "/v1/chat/completions";

/// Server-specific sampling fields beyond the OpenAI ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extensions {
    /// Send `ignore_eos` (vLLM, SGLang, llama.cpp accept it).
    pub ignore_eos: bool,
    /// Send `min_tokens` (vLLM).
    pub min_tokens: bool,
}

/// The HTTP request for `req`: a text prompt goes to `/v1/completions`, a
/// chat to `/v1/chat/completions`.
pub fn build(req: &GenerationRequest, ext: Extensions) -> Result<HttpRequest, String> {
    let mut body = Map::new();
    body.insert("model".into(), Value::from(req.model.as_str()));
    let path = match &req.prompt {
        Prompt::Text(text) => {
            body.insert("prompt".into(), Value::from(text.as_str()));
            COMPLETIONS_PATH
        }
        Prompt::Chat(messages) => {
            let messages = messages
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content}))
                .collect();
            body.insert("messages".into(), Value::Array(messages));
            CHAT_PATH
        }
    };
    body.insert("max_tokens".into(), Value::from(req.max_tokens));
    if let Some(t) = req.temperature {
        body.insert(
            "temperature".into(),
            llm_loadtest_sdk::json::temperature(t)?,
        );
    }
    body.insert("stream".into(), Value::Bool(req.stream));
    if req.stream {
        // Without it most servers send no token counts at all in a stream.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if ext.ignore_eos && req.ignore_eos {
        body.insert("ignore_eos".into(), Value::Bool(true));
    }
    if ext.min_tokens
        && let Some(min) = req.min_tokens
    {
        body.insert("min_tokens".into(), Value::from(min));
    }
    let body = body_with_extra(Value::Object(body), req.extra_body.as_deref())?;
    let framing = if req.stream {
        Framing::Sse
    } else {
        Framing::WholeBody
    };
    Ok(HttpRequest::post_json(path, body, framing))
}
