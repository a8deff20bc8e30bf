//! The servers' wire formats, one module per protocol family, behind one [`Wire`] trait.

pub(crate) mod ollama;
pub(crate) mod openai;
pub(crate) mod sglang;
pub(crate) mod tgi;
pub(crate) mod tokenize;
pub(crate) mod triton;
pub(crate) mod vllm;

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
    /// When the request arrived.
    pub arrival: Instant,
    /// When the first token was released (scheduled instant).
    pub first_token: Instant,
    /// When the answer ended.
    pub end: Instant,
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

/// An RFC 3339 UTC timestamp with nanoseconds, as Ollama writes `created_at`.
pub(crate) fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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

/// Reads and parses a JSON request body; on failure, answers 400 in the protocol's style.
pub(crate) async fn parse_json<T: serde::de::DeserializeOwned>(
    app: &crate::app::App,
    request: axum::extract::Request,
    error_body: fn(StatusCode, &str) -> String,
) -> Result<T, Response> {
    let body = read_body(request).await.map_err(|e| {
        app.reject(
            StatusCode::BAD_REQUEST,
            error_body(StatusCode::BAD_REQUEST, &e),
        )
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        app.reject(
            StatusCode::BAD_REQUEST,
            error_body(StatusCode::BAD_REQUEST, &format!("JSON decode error: {e}")),
        )
    })
}

/// Nanoseconds between two instants, as Ollama reports durations.
pub(crate) fn nanos(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
        assert_eq!(civil_from_days(20_512), (2026, 2, 28));
    }
}
