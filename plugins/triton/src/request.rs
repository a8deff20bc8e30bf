//! Building Triton generate-extension requests:
//! `POST /v2/models/{model}/generate_stream` (or `/generate`).

use std::fmt::Write as _;

use llm_loadtest_sdk::json::body_with_extra;
use llm_loadtest_sdk::{Framing, GenerationRequest, HttpRequest, Prompt};
use serde_json::{Map, Value};

use crate::chat_text;
use llm_loadtest_sdk::json::temperature as temperature_value;

/// The path of the streaming endpoint for `model`.
pub fn stream_path(model: &str) -> String {
    format!("/v2/models/{}/generate_stream", path_segment(model))
}

/// The path of the non-streaming endpoint for `model`.
pub fn generate_path(model: &str) -> String {
    format!("/v2/models/{}/generate", path_segment(model))
}

/// The HTTP request for `req`.
///
/// Triton passes every top-level field other than `text_input` and
/// `parameters` to the model as an input tensor when the model declares one
/// of that name, and as a request parameter otherwise, so one flat body
/// serves both common backends:
/// - `text_input`, `max_tokens` and `stream` are inputs of TensorRT-LLM's
///   `ensemble` / `tensorrt_llm_bls` models;
/// - `temperature` (when given) is an input there; `min_tokens` (when given)
///   and `ignore_eos` (when asked for) reach the model as inputs or
///   parameters, whichever it declares; a model that knows neither ignores
///   them (TensorRT-LLM has no ignore-eos switch of that name);
/// - `exclude_input_in_output: true` stops the vLLM backend from repeating
///   the prompt in `text_output`; models without it ignore the parameter.
///
/// Backends that read sampling settings elsewhere (the vLLM backend's
/// `sampling_parameters` JSON string) take them through `--extra-body`.
/// A chat is flattened into one text (see [`chat_text`]).
pub fn build(req: &GenerationRequest) -> Result<HttpRequest, String> {
    if req.model.is_empty() {
        return Err("triton: the model name is part of the URL path and cannot be empty".into());
    }
    let text = match &req.prompt {
        Prompt::Text(text) => text.clone(),
        Prompt::Chat(messages) => {
            chat_text::flatten(messages).map_err(|e| format!("triton: {e}"))?
        }
    };
    let mut body = Map::new();
    body.insert("text_input".into(), Value::String(text));
    body.insert("max_tokens".into(), Value::from(req.max_tokens));
    body.insert("stream".into(), Value::Bool(req.stream));
    body.insert("exclude_input_in_output".into(), Value::Bool(true));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), temperature_value(t)?);
    }
    if let Some(min) = req.min_tokens {
        body.insert("min_tokens".into(), Value::from(min));
    }
    if req.ignore_eos {
        body.insert("ignore_eos".into(), Value::Bool(true));
    }
    let body = body_with_extra(Value::Object(body), req.extra_body.as_deref())?;
    let (path, framing) = if req.stream {
        (stream_path(&req.model), Framing::Sse)
    } else {
        (generate_path(&req.model), Framing::WholeBody)
    };
    Ok(HttpRequest::post_json(path, body, framing))
}

/// `name` as one URL path segment: everything but RFC 3986's unreserved
/// characters is percent-encoded, so a `/` or `?` in a model name cannot
/// change the route.
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_one_path_segment() {
        assert_eq!(path_segment("ensemble"), "ensemble");
        assert_eq!(path_segment("llama-3.1_8b~x"), "llama-3.1_8b~x");
        assert_eq!(path_segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(path_segment("\u{e9}"), "%C3%A9");
    }
}
