//! The servers' wire formats, one module per protocol family, behind one [`Wire`] trait.

pub(crate) mod openai;
pub(crate) mod vllm;

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// It reached its token limit.
    Length,
    /// The simulated model emitted its end-of-sequence token.
    Stop,
}

impl Finish {
    /// The OpenAI / vLLM / Ollama spelling.
    pub(crate) fn openai(self) -> &'static str {
        match self {
            Finish::Length => "length",
            Finish::Stop => "stop",
        }
    }
}

/// What a protocol needs to write its closing event or whole answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish: Finish,
}

/// One response's formatter. Methods append whole events (framing included) to `out`, which
/// becomes one body frame; per-stream constant parts are rendered once when the wire is made.
pub(crate) trait Wire: Send + 'static {
    /// Content type of a streamed answer.
    const STREAM_CONTENT_TYPE: &'static str;

    /// Token number `index` (from 0); `finish` is set on the last one.
    fn token(&mut self, out: &mut Vec<u8>, word: &str, index: u32, finish: Option<Finish>);
    /// Everything after the last token (usage event, `[DONE]`, final NDJSON line...).
    fn end(&mut self, out: &mut Vec<u8>, done: &Done);
    /// An error event after the 200 status, ending the stream.
    fn stream_error(&mut self, out: &mut Vec<u8>, message: &str);
    /// One event whose payload is not valid JSON.
    fn malformed(&mut self, out: &mut Vec<u8>);
    /// The whole non-streaming answer (a JSON document).
    fn whole(&self, text: &str, done: &Done) -> String;
    /// An error body in this server's style.
    fn error_body(&self, status: StatusCode, message: &str) -> String;
}

/// A JSON string literal (quoted and escaped).
pub(crate) fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A response with a JSON body.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Seconds since the Unix epoch, as the `created` fields carry them.
pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Appends a number in decimal.
pub(crate) fn push_num(out: &mut Vec<u8>, n: impl std::fmt::Display) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// A request identifier derived from the request's number (hex, 16 or 32 digits).
pub(crate) fn request_id(seq: u64, long: bool) -> String {
    let a = crate::tokens::mix(seq);
    if long {
        format!("{a:016x}{:016x}", crate::tokens::mix(a))
    } else {
        format!("{a:016x}")
    }
}

/// The most a request body may weigh (long prompts are fine; a runaway upload is not).
const MAX_BODY: usize = 64 << 20;

/// Reads a request body, or says why it could not be read.
pub(crate) async fn read_body(request: axum::extract::Request) -> Result<bytes::Bytes, String> {
    axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|e| format!("cannot read the request body: {e}"))
}
