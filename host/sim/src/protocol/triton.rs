//! Triton's generate extension: `POST /v2/models/{model}/generate_stream` (SSE
//! `{"model_name","model_version","text_output"}`), `POST /v2/models/{model}/generate`,
//! and `GET /v2/health/ready` / `live`.

use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::generation::GenRequest;
use crate::protocol::{Done, Finish, Wire, json_str, parse_json};
use crate::tokens::{count_prompt_tokens, hash_prompt};

/// Generation options, accepted at the top level or under `parameters` (both occur).
#[derive(Deserialize, Default, Clone, Copy)]
struct Options {
    max_tokens: Option<u32>,
    min_tokens: Option<u32>,
    ignore_eos: Option<bool>,
}

#[derive(Deserialize)]
struct TritonRequest {
    text_input: String,
    #[serde(flatten)]
    options: Options,
    parameters: Option<Options>,
}

/// Triton's error document: `{"error": "..."}`.
fn error_body(_status: StatusCode, message: &str) -> String {
    json!({ "error": message }).to_string()
}

/// `POST /v2/models/{model}/generate_stream`.
pub(crate) async fn generate_stream(
    State(app): State<App>,
    Path(model): Path<String>,
    request: Request,
) -> Response {
    serve(app, model, request, true).await
}

/// `POST /v2/models/{model}/generate`.
pub(crate) async fn generate(
    State(app): State<App>,
    Path(model): Path<String>,
    request: Request,
) -> Response {
    serve(app, model, request, false).await
}

async fn serve(app: App, model: String, request: Request, stream: bool) -> Response {
    let arrival = Instant::now();
    let seq = app.arrive();
    let parsed: TritonRequest = match parse_json(&app, request, error_body).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let nested = parsed.parameters.unwrap_or_default();
    let req = GenRequest {
        prompt_tokens: count_prompt_tokens(&parsed.text_input),
        prompt_hash: hash_prompt(parsed.text_input.as_bytes()),
        max_tokens: parsed.options.max_tokens.or(nested.max_tokens),
        min_tokens: parsed.options.min_tokens.or(nested.min_tokens).unwrap_or(0),
        ignore_eos: parsed
            .options
            .ignore_eos
            .or(nested.ignore_eos)
            .unwrap_or(false),
        stream,
    };
    let plan = app.plan(seq, &req);
    let wire = TritonWire {
        head: format!(
            "data: {{\"model_name\":{},\"model_version\":\"1\",\"text_output\":\"",
            json_str(&model)
        ),
        model,
    };
    app.generate(arrival, req, plan, wire).await
}

struct TritonWire {
    model: String,
    /// `data: {"model_name":..,"model_version":"1","text_output":"`.
    head: String,
}

impl Wire for TritonWire {
    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream";

    fn token(&mut self, out: &mut Vec<u8>, word: &str, _index: u32, _finish: Option<Finish>) {
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(word.as_bytes());
        out.extend_from_slice(b"\"}\n\n");
    }

    fn end(&mut self, _out: &mut Vec<u8>, _done: &Done) {
        // Triton's stream simply ends after the last output.
    }

    fn stream_error(&mut self, out: &mut Vec<u8>, message: &str) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(error_body(StatusCode::INTERNAL_SERVER_ERROR, message).as_bytes());
        out.extend_from_slice(b"\n\n");
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: {\"model_name\":\n\n");
    }

    fn whole(&self, text: &str, _done: &Done) -> String {
        json!({"model_name": self.model, "model_version": "1", "text_output": text}).to_string()
    }

    fn error_body(&self, status: StatusCode, message: &str) -> String {
        error_body(status, message)
    }
}

/// `GET /v2/health/ready` and `/v2/health/live`: 200, empty body.
pub(crate) async fn ready() -> StatusCode {
    StatusCode::OK
}
