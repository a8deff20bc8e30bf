//! Hugging Face TGI's native API: `POST /generate_stream` (SSE written `data:{...}`, no space,
//! as TGI's router writes it), `POST /generate`, `GET /info`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::generation::GenRequest;
use crate::protocol::{Done, Finish, Wire, json_response, push_num, read_body, sglang};
use crate::tokens::{count_prompt_tokens, hash_prompt};

#[derive(Deserialize, Default)]
struct Parameters {
    max_new_tokens: Option<u32>,
    details: Option<bool>,
    /// Not a TGI parameter: a simulator extension so fixed output lengths can be forced.
    ignore_eos: Option<bool>,
}

#[derive(Deserialize)]
struct TgiRequest {
    inputs: String,
    parameters: Option<Parameters>,
}

/// TGI's error document: `{"error": "...", "error_type": "..."}`.
fn error_body(status: StatusCode, message: &str) -> String {
    let kind = if status.is_client_error() {
        "validation"
    } else {
        "generation"
    };
    json!({"error": message, "error_type": kind}).to_string()
}

/// `POST /generate_stream`.
pub(crate) async fn generate_stream(State(app): State<App>, request: Request) -> Response {
    let arrival = Instant::now();
    let seq = app.arrive();
    match read_json(&app, request, error_body).await {
        Ok(body) => serve(app, arrival, seq, body, true).await,
        Err(r) => r,
    }
}

/// `POST /generate`: TGI's when the body has `inputs`, SGLang's otherwise (both servers use
/// this path, with different bodies). A body that is not JSON gets SGLang's error style.
pub(crate) async fn generate_or_sglang(State(app): State<App>, request: Request) -> Response {
    let arrival = Instant::now();
    let seq = app.arrive();
    let body = match read_json(&app, request, sglang::error_body).await {
        Ok(body) => body,
        Err(r) => return r,
    };
    if body.get("inputs").is_some() {
        serve(app, arrival, seq, body, false).await
    } else {
        sglang::serve(app, arrival, seq, body).await
    }
}

async fn read_json(
    app: &App,
    request: Request,
    error_body: fn(StatusCode, &str) -> String,
) -> Result<Value, Response> {
    let bad = |m: &str| {
        app.reject(
            StatusCode::BAD_REQUEST,
            error_body(StatusCode::BAD_REQUEST, m),
        )
    };
    let body = read_body(request).await.map_err(|e| bad(&e))?;
    serde_json::from_slice(&body).map_err(|e| bad(&format!("JSON decode error: {e}")))
}

async fn serve(app: App, arrival: Instant, seq: u64, body: Value, stream: bool) -> Response {
    let parsed: TgiRequest = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => {
            return app.reject(
                StatusCode::BAD_REQUEST,
                error_body(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
            );
        }
    };
    let params = parsed.parameters.unwrap_or_default();
    let prompt_tokens = count_prompt_tokens(&parsed.inputs);
    let req = GenRequest {
        prompt_tokens,
        prompt_hash: hash_prompt(parsed.inputs.as_bytes()),
        max_tokens: params.max_new_tokens,
        min_tokens: 0,
        ignore_eos: params.ignore_eos.unwrap_or(false),
        stream,
    };
    let plan = app.plan(seq, &req);
    let wire = TgiWire {
        text: String::new(),
        prompt_tokens,
        details: params.details.unwrap_or(false),
    };
    app.generate(arrival, req, plan, wire).await
}

struct TgiWire {
    /// The text so far: the last event carries it whole in `generated_text`.
    text: String,
    prompt_tokens: u32,
    details: bool,
}

fn finish_name(finish: Finish) -> &'static str {
    match finish {
        Finish::Length => "length",
        Finish::Stop => "eos_token",
    }
}

/// A stable token id for a word of the simulator's vocabulary.
fn token_id(word: &str) -> u32 {
    (hash_prompt(word.as_bytes()) % 128_000) as u32
}

impl Wire for TgiWire {
    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream";

    fn token(&mut self, out: &mut Vec<u8>, word: &str, index: u32, finish: Option<Finish>) {
        self.text.push_str(word);
        let id = token_id(word);
        out.extend_from_slice(b"data:{\"index\":");
        push_num(out, index + 1);
        out.extend_from_slice(b",\"token\":{\"id\":");
        push_num(out, id);
        out.extend_from_slice(b",\"text\":\"");
        out.extend_from_slice(word.as_bytes());
        out.extend_from_slice(b"\",\"logprob\":-");
        push_num(out, format_args!("{:.4}", f64::from(id % 997) / 997.0));
        out.extend_from_slice(b",\"special\":false},");
        match finish {
            None => out.extend_from_slice(b"\"generated_text\":null,\"details\":null"),
            Some(f) => {
                out.reserve(self.text.len() + 128);
                out.extend_from_slice(b"\"generated_text\":\"");
                out.extend_from_slice(self.text.as_bytes());
                out.extend_from_slice(b"\",\"details\":{\"finish_reason\":\"");
                out.extend_from_slice(finish_name(f).as_bytes());
                out.extend_from_slice(b"\",\"generated_tokens\":");
                push_num(out, index + 1);
                out.extend_from_slice(b",\"input_length\":");
                push_num(out, self.prompt_tokens);
                out.extend_from_slice(b",\"seed\":null}");
            }
        }
        out.extend_from_slice(b",\"top_tokens\":null}\n\n");
    }

    fn end(&mut self, _out: &mut Vec<u8>, _done: &Done) {
        // TGI ends the stream after the event with `generated_text`; no [DONE].
    }

    fn stream_error(&mut self, out: &mut Vec<u8>, message: &str) {
        out.extend_from_slice(b"data:");
        out.extend_from_slice(error_body(StatusCode::INTERNAL_SERVER_ERROR, message).as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data:{\"index\":\n\n");
    }

    fn whole(&self, text: &str, done: &Done) -> String {
        if self.details {
            json!({"generated_text": text, "details": {
                "finish_reason": finish_name(done.finish),
                "generated_tokens": done.completion_tokens,
                "seed": null, "prefill": [], "tokens": [],
            }})
        } else {
            json!({ "generated_text": text })
        }
        .to_string()
    }

    fn error_body(&self, status: StatusCode, message: &str) -> String {
        error_body(status, message)
    }
}

/// `GET /info`.
pub(crate) async fn info(State(app): State<App>) -> Response {
    let max = app.max_model_len();
    json_response(
        StatusCode::OK,
        json!({
            "model_id": app.config.model, "model_sha": null, "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128, "max_best_of": 2, "max_stop_sequences": 4,
            "max_input_tokens": max.saturating_sub(1), "max_total_tokens": max,
            "validation_workers": 2, "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": concat!(env!("CARGO_PKG_VERSION"), "-sim"),
            "sha": null, "docker_label": null,
        })
        .to_string(),
    )
}
