//! OpenAI-compatible routes, byte-for-byte in vLLM's style (see /work/shared/wire/vllm-tiny-*):
//! `POST /v1/completions`, `POST /v1/chat/completions`, `GET /v1/models`.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::generation::GenRequest;
use crate::protocol::{
    Done, Finish, Wire, json_response, json_str, push_num, read_body, request_id, unix_seconds,
};
use crate::tokens::{
    CHAT_GENERATION_PROMPT_TOKENS, CHAT_TOKENS_PER_MESSAGE, count_prompt_tokens, hash_prompt,
};

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
    continuous_usage_stats: Option<bool>,
}

/// The fields of a completions or chat request the simulator acts on; others are ignored.
#[derive(Deserialize)]
struct OpenAiRequest {
    model: Option<String>,
    prompt: Option<Value>,
    messages: Option<Vec<Value>>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    min_tokens: Option<u32>,
    ignore_eos: Option<bool>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
}

/// vLLM's error document: `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error_body(status: StatusCode, message: &str) -> String {
    let kind = match status.as_u16() {
        400 => "BadRequestError",
        404 => "NotFoundError",
        _ => "InternalServerError",
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}})
        .to_string()
}

fn bad_request(app: &App, message: &str) -> Response {
    app.reject(
        StatusCode::BAD_REQUEST,
        error_body(StatusCode::BAD_REQUEST, message),
    )
}

/// Counts and hashes a completions `prompt`: a string, a list of strings, or token ids.
fn prompt_of(prompt: &Value) -> Option<(u32, u64)> {
    match prompt {
        Value::String(s) => Some((count_prompt_tokens(s), hash_prompt(s.as_bytes()))),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            let joined = joined.join("\n");
            Some((count_prompt_tokens(&joined), hash_prompt(joined.as_bytes())))
        }
        Value::Array(items) if items.iter().all(Value::is_u64) => Some((
            items.len() as u32,
            hash_prompt(prompt.to_string().as_bytes()),
        )),
        _ => None,
    }
}

/// Counts and hashes chat `messages`: the words of every text content, plus the simulated chat
/// template's tokens (see [`CHAT_TOKENS_PER_MESSAGE`]).
pub(crate) fn messages_of(messages: &[Value]) -> (u32, u64) {
    let mut text = String::new();
    for m in messages {
        match m.get("content") {
            Some(Value::String(s)) => {
                text.push_str(s);
                text.push('\n');
            }
            Some(Value::Array(parts)) => {
                for part in parts {
                    if let Some(s) = part.get("text").and_then(Value::as_str) {
                        text.push_str(s);
                        text.push('\n');
                    }
                }
            }
            _ => {}
        }
    }
    let template = u32::try_from(messages.len())
        .unwrap_or(u32::MAX)
        .saturating_mul(CHAT_TOKENS_PER_MESSAGE)
        .saturating_add(CHAT_GENERATION_PROMPT_TOKENS);
    (
        count_prompt_tokens(&text).saturating_add(template),
        hash_prompt(text.as_bytes()),
    )
}

/// `POST /v1/completions`.
pub(crate) async fn completions(State(app): State<App>, request: Request) -> Response {
    serve(app, request, Kind::Completions).await
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(State(app): State<App>, request: Request) -> Response {
    serve(app, request, Kind::Chat).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Completions,
    Chat,
}

async fn serve(app: App, request: Request, kind: Kind) -> Response {
    let arrival = Instant::now();
    let seq = app.arrive();
    let body = match read_body(request).await {
        Ok(b) => b,
        Err(e) => return bad_request(&app, &e),
    };
    let parsed: OpenAiRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&app, &format!("JSON decode error: {e}")),
    };
    let (prompt_tokens, prompt_hash) = match kind {
        Kind::Completions => match parsed.prompt.as_ref().and_then(prompt_of) {
            Some(p) => p,
            None => {
                return bad_request(
                    &app,
                    "`prompt` must be a string, a list of strings or a list of token ids",
                );
            }
        },
        Kind::Chat => match &parsed.messages {
            Some(m) if !m.is_empty() => messages_of(m),
            _ => return bad_request(&app, "`messages` must be a non-empty list"),
        },
    };
    let stream = parsed.stream.unwrap_or(false);
    let req = GenRequest {
        prompt_tokens,
        prompt_hash,
        max_tokens: parsed.max_completion_tokens.or(parsed.max_tokens),
        min_tokens: parsed.min_tokens.unwrap_or(0),
        ignore_eos: parsed.ignore_eos.unwrap_or(false),
        stream,
    };
    let plan = app.plan(seq, &req);
    let options = parsed.stream_options.as_ref();
    let model = match parsed.model {
        Some(asked) if !app.config.own_model_name => asked,
        _ => app.config.model.clone(),
    };
    let (id, object) = match kind {
        Kind::Completions => (
            format!("cmpl-{}", request_id(seq, false)),
            "text_completion",
        ),
        Kind::Chat => (
            format!("chatcmpl-{}", request_id(seq, false)),
            "chat.completion.chunk",
        ),
    };
    let created = unix_seconds();
    let wire = OpenAiWire {
        kind,
        prefix: format!(
            "{{\"id\":\"{id}\",\"object\":\"{object}\",\"created\":{created},\"model\":{},",
            json_str(&model)
        ),
        id,
        model,
        created,
        include_usage: options.and_then(|o| o.include_usage).unwrap_or(false),
        continuous_usage: options
            .and_then(|o| o.continuous_usage_stats)
            .unwrap_or(false),
        prompt_tokens,
    };
    app.generate(arrival, req, plan, wire).await
}

/// Formats one completions or chat answer.
struct OpenAiWire {
    kind: Kind,
    /// `{"id":..,"object":..,"created":..,"model":..,` — shared by every chunk of the stream.
    prefix: String,
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    continuous_usage: bool,
    prompt_tokens: u32,
}

impl OpenAiWire {
    fn usage(&self, out: &mut Vec<u8>, completion_tokens: u32) {
        out.extend_from_slice(b"\"usage\":{\"prompt_tokens\":");
        push_num(out, self.prompt_tokens);
        out.extend_from_slice(b",\"total_tokens\":");
        push_num(out, self.prompt_tokens + completion_tokens);
        out.extend_from_slice(b",\"completion_tokens\":");
        push_num(out, completion_tokens);
        out.push(b'}');
    }
}

fn finish_json(finish: Option<Finish>) -> &'static [u8] {
    match finish {
        None => b"null",
        Some(Finish::Length) => b"\"length\"",
        Some(Finish::Stop) => b"\"stop\"",
    }
}

impl Wire for OpenAiWire {
    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream; charset=utf-8";

    fn token(&mut self, out: &mut Vec<u8>, word: &str, index: u32, finish: Option<Finish>) {
        match self.kind {
            Kind::Completions => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(self.prefix.as_bytes());
                out.extend_from_slice(b"\"choices\":[{\"index\":0,\"text\":\"");
                out.extend_from_slice(word.as_bytes());
                out.extend_from_slice(b"\",\"logprobs\":null,\"finish_reason\":");
                out.extend_from_slice(finish_json(finish));
                out.extend_from_slice(
                    b",\"stop_reason\":null,\"prompt_token_ids\":null,\"token_ids\":null}]",
                );
            }
            Kind::Chat => {
                if index == 0 {
                    // vLLM's first chat chunk carries only the role; it leaves with the first token.
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(self.prefix.as_bytes());
                    out.extend_from_slice(
                        b"\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]",
                    );
                    if self.continuous_usage {
                        out.push(b',');
                        self.usage(out, 0);
                    }
                    out.extend_from_slice(b"}\n\n");
                }
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(self.prefix.as_bytes());
                out.extend_from_slice(b"\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
                out.extend_from_slice(word.as_bytes());
                out.extend_from_slice(b"\"},\"logprobs\":null,\"finish_reason\":");
                out.extend_from_slice(finish_json(finish));
                out.extend_from_slice(b",\"stop_reason\":null}]");
            }
        }
        if self.continuous_usage {
            out.push(b',');
            self.usage(out, index + 1);
        }
        out.extend_from_slice(b"}\n\n");
    }

    fn end(&mut self, out: &mut Vec<u8>, done: &Done) {
        if self.include_usage {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(self.prefix.as_bytes());
            out.extend_from_slice(b"\"choices\":[],");
            self.usage(out, done.completion_tokens);
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn stream_error(&mut self, out: &mut Vec<u8>, message: &str) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(error_body(StatusCode::INTERNAL_SERVER_ERROR, message).as_bytes());
        out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
    }

    fn malformed(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b"\"choices\":[{\"index\":0,\"text\":\n\n");
    }

    fn whole(&self, text: &str, done: &Done) -> String {
        let usage = json!({
            "prompt_tokens": done.prompt_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
            "completion_tokens": done.completion_tokens,
        });
        let finish = done.finish.openai();
        match self.kind {
            Kind::Completions => json!({
                "id": self.id, "object": "text_completion", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "text": text, "logprobs": null,
                             "finish_reason": finish, "stop_reason": null}],
                "usage": usage,
            }),
            Kind::Chat => json!({
                "id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0,
                             "message": {"role": "assistant", "content": text},
                             "logprobs": null, "finish_reason": finish, "stop_reason": null}],
                "usage": usage,
            }),
        }
        .to_string()
    }

    fn error_body(&self, status: StatusCode, message: &str) -> String {
        error_body(status, message)
    }
}

/// `GET /v1/models`.
pub(crate) async fn models(State(app): State<App>) -> Response {
    let model = &app.config.model;
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": [{
            "id": model, "object": "model", "created": unix_seconds(), "owned_by": "vllm",
            "root": model, "parent": null, "max_model_len": app.max_model_len(),
        }]})
        .to_string(),
    )
}
