//! SGLang's native `POST /generate`: SSE events whose `text` is the whole text so far, with
//! `meta_info`, then `data: [DONE]`. (TGI's `/generate` shares the path; the router tells them
//! apart by the body, see [`crate::protocol::tgi::generate_or_sglang`].)

use std::time::Instant;

use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::generation::GenRequest;
use crate::protocol::{Done, Finish, Wire, json_str, push_num, request_id};
use crate::tokens::{count_prompt_tokens, hash_prompt};

#[derive(Deserialize, Default)]
struct SamplingParams {
    max_new_tokens: Option<u32>,
    min_new_tokens: Option<u32>,
    ignore_eos: Option<bool>,
}

#[derive(Deserialize)]
struct SglangRequest {
    text: Option<Value>,
    input_ids: Option<Vec<u32>>,
    sampling_params: Option<SamplingParams>,
    stream: Option<bool>,
}

/// SGLang's error document for a bad request: `{"error": {"message": "..."}}`.
pub(crate) fn error_body(_status: StatusCode, message: &str) -> String {
    json!({"error": {"message": message}}).to_string()
}

/// Llama 3's end-of-turn token id, reported as the stop token SGLang "matched".
const EOS_ID: u32 = 128_009;

/// Answers an SGLang `/generate` request whose body is already parsed.
pub(crate) async fn serve(app: App, arrival: Instant, seq: u64, body: Value) -> Response {
    let parsed: SglangRequest = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => {
            return app.reject(
                StatusCode::BAD_REQUEST,
                error_body(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
            );
        }
    };
    let (prompt_tokens, prompt_hash) = match (&parsed.text, &parsed.input_ids) {
        (Some(Value::String(s)), _) => (count_prompt_tokens(s), hash_prompt(s.as_bytes())),
        (_, Some(ids)) => (ids.len() as u32, hash_prompt(format!("{ids:?}").as_bytes())),
        _ => {
            return app.reject(
                StatusCode::BAD_REQUEST,
                error_body(
                    StatusCode::BAD_REQUEST,
                    "either `text` (a string) or `input_ids` must be given",
                ),
            );
        }
    };
    let params = parsed.sampling_params.unwrap_or_default();
    let req = GenRequest {
        prompt_tokens,
        prompt_hash,
        max_tokens: params.max_new_tokens,
        min_tokens: params.min_new_tokens.unwrap_or(0),
        ignore_eos: params.ignore_eos.unwrap_or(false),
        stream: parsed.stream.unwrap_or(false),
    };
    let plan = app.plan(seq, &req);
    let wire = SglangWire {
        id: request_id(seq, true),
        text: String::new(),
        prompt_tokens,
    };
    app.generate(arrival, req, plan, wire).await
}

struct SglangWire {
    id: String,
    /// The text so far: every event repeats it whole, as SGLang does.
    text: String,
    prompt_tokens: u32,
}

fn finish_reason(finish: Finish, completion_tokens: u32) -> Value {
    match finish {
        Finish::Length => json!({"type": "length", "length": completion_tokens}),
        Finish::Stop => json!({"type": "stop", "matched": EOS_ID}),
    }
}

impl SglangWire {
    fn meta(&self, out: &mut Vec<u8>, finish: Option<Finish>, completion_tokens: u32) {
        out.extend_from_slice(b"\"meta_info\":{\"id\":\"");
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(b"\",\"finish_reason\":");
        match finish {
            None => out.extend_from_slice(b"null"),
            Some(f) => {
                out.extend_from_slice(finish_reason(f, completion_tokens).to_string().as_bytes())
            }
        }
        out.extend_from_slice(b",\"prompt_tokens\":");
        push_num(out, self.prompt_tokens);
        out.extend_from_slice(b",\"completion_tokens\":");
        push_num(out, completion_tokens);
        out.extend_from_slice(b",\"cached_tokens\":0}");
    }
}

impl Wire for SglangWire {
    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream";

    fn token(&mut self, out: &mut Vec<u8>, word: &str, index: u32, finish: Option<Finish>) {
        self.text.push_str(word);
        out.reserve(self.text.len() + 160);
        out.extend_from_slice(b"data: {\"text\":\"");
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(b"\",");
        self.meta(out, finish, index + 1);
        out.extend_from_slice(b"}\n\n");
    }

    fn end(&mut self, out: &mut Vec<u8>, _done: &Done) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn stream_error(&mut self, out: &mut Vec<u8>, message: &str) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(error_body(StatusCode::INTERNAL_SERVER_ERROR, message).as_bytes());
        out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: {\"text\":");
        out.extend_from_slice(json_str(&self.text).as_bytes());
        out.extend_from_slice(b",\"meta_info\":\n\n");
    }

    fn whole(&self, text: &str, done: &Done) -> String {
        json!({
            "text": text,
            "meta_info": {
                "id": self.id,
                "finish_reason": finish_reason(done.finish, done.completion_tokens),
                "prompt_tokens": done.prompt_tokens,
                "completion_tokens": done.completion_tokens,
                "cached_tokens": 0,
                "e2e_latency": done.end.saturating_duration_since(done.arrival).as_secs_f64(),
            },
        })
        .to_string()
    }

    fn error_body(&self, status: StatusCode, message: &str) -> String {
        error_body(status, message)
    }
}
