//! Building TGI `POST /generate_stream` and `POST /generate` requests.

use llm_loadtest_sdk::json::body_with_extra;
use llm_loadtest_sdk::{Framing, GenerationRequest, HttpRequest, Prompt};
use serde_json::{Map, Value};

use crate::chat_text;
use llm_loadtest_sdk::json::temperature as temperature_value;

/// Path of the streaming endpoint.
pub const STREAM_PATH: &str = "/generate_stream";
/// Path of the non-streaming endpoint.
pub const GENERATE_PATH: &str = "/generate";

/// The HTTP request for `req`: `{"inputs", "parameters": {"max_new_tokens",
/// "details": true, ...}}`.
///
/// - `details: true` makes TGI report `finish_reason` and `generated_tokens`
///   (the last stream event has `details: null` without it).
/// - TGI rejects a temperature of 0 (it must be strictly positive) and is
///   greedy by default, so 0 sends no temperature; a positive one is sent
///   with `do_sample: true`, because TGI samples at temperature 1 only when
///   told to.
/// - TGI has no minimum length: `min_tokens` is not sent.
/// - TGI has no `ignore_eos` either. When it is asked for, the adapter
///   sends `parameters.ignore_eos: true`: the built-in simulator honours it,
///   and TGI's router ignores parameters it does not know, so output
///   lengths there follow the model.
/// - TGI serves one model and takes no model name; a chat is flattened into
///   one text (see [`chat_text`]).
pub fn build(req: &GenerationRequest) -> Result<HttpRequest, String> {
    let inputs = match &req.prompt {
        Prompt::Text(text) => text.clone(),
        Prompt::Chat(messages) => chat_text::flatten(messages).map_err(|e| format!("tgi: {e}"))?,
    };
    let mut parameters = Map::new();
    parameters.insert("max_new_tokens".into(), Value::from(req.max_tokens));
    parameters.insert("details".into(), Value::Bool(true));
    if let Some(t) = req.temperature {
        let value = temperature_value(t)?;
        if t > 0.0 {
            parameters.insert("temperature".into(), value);
            parameters.insert("do_sample".into(), Value::Bool(true));
        }
    }
    if req.ignore_eos {
        parameters.insert("ignore_eos".into(), Value::Bool(true));
    }
    let mut body = Map::new();
    body.insert("inputs".into(), Value::String(inputs));
    body.insert("parameters".into(), Value::Object(parameters));
    let body = body_with_extra(Value::Object(body), req.extra_body.as_deref())?;
    let (path, framing) = if req.stream {
        (STREAM_PATH, Framing::Sse)
    } else {
        (GENERATE_PATH, Framing::WholeBody)
    };
    Ok(HttpRequest::post_json(path, body, framing))
}
