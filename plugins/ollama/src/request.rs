//! Building Ollama `POST /api/generate` and `POST /api/chat` requests.

use llm_loadtest_sdk::json::body_with_extra;
use llm_loadtest_sdk::{Framing, GenerationRequest, HttpRequest, Prompt};
use serde_json::{Map, Value, json};

use llm_loadtest_sdk::json::temperature as temperature_value;

/// Path of the text generation endpoint.
pub const GENERATE_PATH: &str = "/api/generate";
/// Path of the chat endpoint.
pub const CHAT_PATH: &str = "/api/chat";

/// The HTTP request for `req`: a text prompt goes to `/api/generate`
/// (`prompt`), a chat to `/api/chat` (`messages`).
///
/// - `max_tokens` is `options.num_predict`; `temperature` is
///   `options.temperature` when given.
/// - Ollama has no minimum length: `min_tokens` is not sent.
/// - Ollama has no `ignore_eos` either. When it is asked for, the adapter
///   sends `options.ignore_eos: true`: the built-in simulator honours it, and
///   a real Ollama ignores the unknown option (it logs "invalid option
///   provided"), so output lengths there follow the model.
/// - `stream` is always written, because Ollama streams unless told not to.
pub fn build(req: &GenerationRequest) -> Result<HttpRequest, String> {
    let mut body = Map::new();
    body.insert("model".into(), Value::from(req.model.as_str()));
    let path = match &req.prompt {
        Prompt::Text(text) => {
            body.insert("prompt".into(), Value::from(text.as_str()));
            GENERATE_PATH
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
    body.insert("stream".into(), Value::Bool(req.stream));
    let mut options = Map::new();
    options.insert("num_predict".into(), Value::from(req.max_tokens));
    if let Some(t) = req.temperature {
        options.insert("temperature".into(), temperature_value(t)?);
    }
    if req.ignore_eos {
        options.insert("ignore_eos".into(), Value::Bool(true));
    }
    body.insert("options".into(), Value::Object(options));
    let body = body_with_extra(Value::Object(body), req.extra_body.as_deref())?;
    let framing = if req.stream {
        Framing::Ndjson
    } else {
        Framing::WholeBody
    };
    Ok(HttpRequest::post_json(path, body, framing))
}
