//! `POST /tokenize`, in the shapes of the servers that have one, so the client's
//! server-side sizing can be checked: vLLM and SGLang read `{"prompt"}` or (vLLM) `{"messages"}`
//! and answer `{"count", "max_model_len", "tokens", "token_strs"}`; llama.cpp reads
//! `{"content"}` and answers `{"tokens"}`; TGI reads `{"inputs"}` and answers an array of
//! `{"id", "text", "start", "stop"}`. The count is exactly what a generation request with the
//! same prompt reports as `prompt_tokens` (chat template included for messages).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::app::App;
use crate::protocol::json_response;
use crate::protocol::openai::{error_body, messages_of};
use crate::tokens::count_prompt_tokens;

/// A stable id per word, so answers look like a tokenizer's.
fn ids(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .map(|w| {
            w.bytes()
                .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 32_000
        })
        .collect()
}

fn answer(count: u32, token_ids: Vec<u32>, max_model_len: u64) -> Response {
    json_response(
        StatusCode::OK,
        json!({"count": count, "max_model_len": max_model_len, "tokens": token_ids,
               "token_strs": null})
        .to_string(),
    )
}

pub(crate) async fn tokenize(State(app): State<App>, body: axum::body::Bytes) -> Response {
    app.stats
        .tokenize_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let bad = |message: &str| {
        json_response(
            StatusCode::BAD_REQUEST,
            error_body(StatusCode::BAD_REQUEST, message),
        )
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("the body is not JSON");
    };
    let max_model_len = app.max_model_len();
    if let Some(messages) = v.get("messages").and_then(Value::as_array) {
        let (count, _) = messages_of(messages);
        return answer(count, (0..count).collect(), max_model_len);
    }
    if let Some(text) = v.get("prompt").and_then(Value::as_str) {
        return answer(count_prompt_tokens(text), ids(text), max_model_len);
    }
    if let Some(text) = v.get("content").and_then(Value::as_str) {
        return json_response(StatusCode::OK, json!({"tokens": ids(text)}).to_string());
    }
    if let Some(text) = v.get("inputs").and_then(Value::as_str) {
        let tokens: Vec<Value> = text
            .split_whitespace()
            .zip(ids(text))
            .map(|(w, id)| json!({"id": id, "text": w, "start": 0, "stop": 0}))
            .collect();
        return json_response(StatusCode::OK, Value::Array(tokens).to_string());
    }
    // llama.cpp answers a body without `content` with no tokens.
    json_response(StatusCode::OK, json!({"tokens": []}).to_string())
}
