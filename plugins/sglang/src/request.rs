//! Building SGLang `POST /generate` requests.

use llm_loadtest_sdk::json::body_with_extra;
use llm_loadtest_sdk::{Framing, GenerationRequest, HttpRequest, Prompt};
use serde_json::{Map, Value};

use crate::chat_text;
use llm_loadtest_sdk::json::temperature as temperature_value;

/// SGLang's native generation endpoint.
pub const GENERATE_PATH: &str = "/generate";

/// The HTTP request for `req`: `{"text", "sampling_params", "stream"}`.
///
/// SGLang serves one model per server and its native endpoint takes no model
/// name, so `req.model` is not sent. A chat is flattened into one text (see
/// [`chat_text`]). `ignore_eos`, `min_new_tokens` and `temperature` are sent
/// only when asked for, so the server's defaults stay in force otherwise.
pub fn build(req: &GenerationRequest) -> Result<HttpRequest, String> {
    let text = match &req.prompt {
        Prompt::Text(text) => text.clone(),
        Prompt::Chat(messages) => {
            chat_text::flatten(messages).map_err(|e| format!("sglang: {e}"))?
        }
    };
    let mut sampling = Map::new();
    sampling.insert("max_new_tokens".into(), Value::from(req.max_tokens));
    if let Some(min) = req.min_tokens {
        sampling.insert("min_new_tokens".into(), Value::from(min));
    }
    if req.ignore_eos {
        sampling.insert("ignore_eos".into(), Value::Bool(true));
    }
    if let Some(t) = req.temperature {
        sampling.insert("temperature".into(), temperature_value(t)?);
    }
    let mut body = Map::new();
    body.insert("text".into(), Value::String(text));
    body.insert("sampling_params".into(), Value::Object(sampling));
    // SGLang does not stream unless asked.
    body.insert("stream".into(), Value::Bool(req.stream));
    let body = body_with_extra(Value::Object(body), req.extra_body.as_deref())?;
    let framing = if req.stream {
        Framing::Sse
    } else {
        Framing::WholeBody
    };
    Ok(HttpRequest::post_json(GENERATE_PATH, body, framing))
}
