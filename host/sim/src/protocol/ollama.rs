//! Ollama's native API: `POST /api/generate`, `POST /api/chat` (NDJSON lines, `stream`
//! defaults to true), `GET /api/tags`, `GET /api/version`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::generation::GenRequest;
use crate::protocol::{
    Done, Finish, Wire, json_response, json_str, nanos, parse_json, rfc3339_now,
};
use crate::tokens::{count_prompt_tokens, hash_prompt};

#[derive(Deserialize, Default)]
struct Options {
    num_predict: Option<i64>,
    /// Not an Ollama option: a simulator extension so fixed output lengths can be forced.
    ignore_eos: Option<bool>,
}

#[derive(Deserialize)]
struct OllamaRequest {
    model: Option<String>,
    prompt: Option<String>,
    messages: Option<Vec<Value>>,
    stream: Option<bool>,
    options: Option<Options>,
}

/// Ollama's error document: `{"error": "..."}`.
fn error_body(_status: StatusCode, message: &str) -> String {
    json!({ "error": message }).to_string()
}

/// `POST /api/generate`.
pub(crate) async fn generate(State(app): State<App>, request: Request) -> Response {
    serve(app, request, false).await
}

/// `POST /api/chat`.
pub(crate) async fn chat(State(app): State<App>, request: Request) -> Response {
    serve(app, request, true).await
}

async fn serve(app: App, request: Request, chat: bool) -> Response {
    let arrival = Instant::now();
    let seq = app.arrive();
    let parsed: OllamaRequest = match parse_json(&app, request, error_body).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let text = if chat {
        let Some(messages) = parsed.messages.as_ref() else {
            return app.reject(
                StatusCode::BAD_REQUEST,
                error_body(StatusCode::BAD_REQUEST, "messages are required"),
            );
        };
        messages
            .iter()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        parsed.prompt.clone().unwrap_or_default()
    };
    let options = parsed.options.unwrap_or_default();
    let req = GenRequest {
        prompt_tokens: count_prompt_tokens(&text),
        prompt_hash: hash_prompt(text.as_bytes()),
        // -1 (infinite) and -2 (fill the context) fall back to the default limit.
        max_tokens: options
            .num_predict
            .filter(|n| *n > 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        min_tokens: 0,
        ignore_eos: options.ignore_eos.unwrap_or(false),
        stream: parsed.stream.unwrap_or(true),
    };
    let plan = app.plan(seq, &req);
    let model = parsed.model.unwrap_or_else(|| app.config.model.clone());
    let wire = OllamaWire {
        chat,
        model_field: format!("{{\"model\":{},\"created_at\":\"", json_str(&model)),
        model,
    };
    app.generate(arrival, req, plan, wire).await
}

struct OllamaWire {
    chat: bool,
    model: String,
    /// `{"model":..,"created_at":"` — every line starts so.
    model_field: String,
}

impl OllamaWire {
    fn line_start(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.model_field.as_bytes());
        out.extend_from_slice(rfc3339_now().as_bytes());
        out.extend_from_slice(b"\",");
    }

    fn durations(done: &Done) -> Value {
        json!({
            "done": true,
            "done_reason": done.finish.openai(),
            "total_duration": nanos(done.arrival, done.end),
            "load_duration": 0,
            "prompt_eval_count": done.prompt_tokens,
            "prompt_eval_duration": nanos(done.arrival, done.first_token),
            "eval_count": done.completion_tokens,
            "eval_duration": nanos(done.first_token, done.end),
        })
    }
}

impl Wire for OllamaWire {
    const STREAM_CONTENT_TYPE: &'static str = "application/x-ndjson";

    fn token(&mut self, out: &mut Vec<u8>, word: &str, _index: u32, _finish: Option<Finish>) {
        self.line_start(out);
        if self.chat {
            out.extend_from_slice(b"\"message\":{\"role\":\"assistant\",\"content\":\"");
            out.extend_from_slice(word.as_bytes());
            out.extend_from_slice(b"\"},\"done\":false}\n");
        } else {
            out.extend_from_slice(b"\"response\":\"");
            out.extend_from_slice(word.as_bytes());
            out.extend_from_slice(b"\",\"done\":false}\n");
        }
    }

    fn end(&mut self, out: &mut Vec<u8>, done: &Done) {
        self.line_start(out);
        if self.chat {
            out.extend_from_slice(b"\"message\":{\"role\":\"assistant\",\"content\":\"\"},");
        } else {
            out.extend_from_slice(b"\"response\":\"\",");
        }
        let tail = Self::durations(done).to_string();
        // Splice the stats object's members after the fields already written.
        out.extend_from_slice(&tail.as_bytes()[1..]);
        out.push(b'\n');
    }

    fn stream_error(&mut self, out: &mut Vec<u8>, message: &str) {
        out.extend_from_slice(error_body(StatusCode::INTERNAL_SERVER_ERROR, message).as_bytes());
        out.push(b'\n');
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        self.line_start(out);
        out.extend_from_slice(b"\"response\":\n");
    }

    fn whole(&self, text: &str, done: &Done) -> String {
        let mut v = Self::durations(done);
        let fields = v.as_object_mut().expect("durations() builds an object");
        fields.insert("model".into(), self.model.clone().into());
        fields.insert("created_at".into(), rfc3339_now().into());
        if self.chat {
            fields.insert(
                "message".into(),
                json!({"role": "assistant", "content": text}),
            );
        } else {
            fields.insert("response".into(), text.into());
        }
        v.to_string()
    }

    fn error_body(&self, status: StatusCode, message: &str) -> String {
        error_body(status, message)
    }
}

/// `GET /api/tags`.
pub(crate) async fn tags(State(app): State<App>) -> Response {
    json_response(
        StatusCode::OK,
        json!({"models": [{
            "name": app.config.model, "model": app.config.model,
            "modified_at": rfc3339_now(), "size": 4_920_753_328u64,
            "digest": format!("{:064x}", 0),
            "details": {"parent_model": "", "format": "gguf", "family": "llama",
                        "families": ["llama"], "parameter_size": "8.0B",
                        "quantization_level": "Q4_K_M"},
        }]})
        .to_string(),
    )
}

/// `GET /api/version`.
pub(crate) async fn version() -> Response {
    json_response(
        StatusCode::OK,
        json!({"version": concat!(env!("CARGO_PKG_VERSION"), "-sim")}).to_string(),
    )
}
