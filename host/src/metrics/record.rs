//! What one request measured.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a request failed. The classes are stable names used in output files.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// No connection could be made (refused, DNS, TLS).
    Connect,
    /// The request was written on a fresh connection, which closed before any response byte.
    Send,
    /// The request did not complete within `--timeout`.
    Timeout,
    /// The server answered with a non-2xx status.
    HttpStatus,
    /// The stream broke, ended early, or carried an error event.
    StreamError,
    /// The adapter could not understand a message.
    Parse,
    /// The adapter plugin trapped, timed out or exceeded its limits.
    Plugin,
}

impl ErrorClass {
    /// Every class, in report order.
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::Connect,
        ErrorClass::Send,
        ErrorClass::Timeout,
        ErrorClass::HttpStatus,
        ErrorClass::StreamError,
        ErrorClass::Parse,
        ErrorClass::Plugin,
    ];

    /// The stable name (`connect`, `http-status`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Send => "send",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "http-status",
            ErrorClass::StreamError => "stream-error",
            ErrorClass::Parse => "parse",
            ErrorClass::Plugin => "plugin",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the connection layer did for one request: whether it reused a connection, how many
/// it opened, and whether it was sent again after a reused connection died unanswered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionUse {
    /// Sent on a connection an earlier request used.
    pub reused: bool,
    /// Connections opened for it (0, 1, or 2 after a retry).
    pub opened: u32,
    /// Times it was sent again on a fresh connection after a reused one closed unanswered.
    pub retries: u32,
    /// Idle connections found closed by the server, or idle too long, and dropped first.
    pub stale: u32,
    /// For the last connection opened for it: the TCP connect, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_us: Option<u64>,
    /// … and its TLS handshake (`https://`), µs. Both lie inside the request's TTFT and
    /// latency, as in vLLM's bench serve, and are reported apart so they are not hidden there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_handshake_us: Option<u64>,
}

/// A classified failure with the server's or the transport's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestError {
    pub class: ErrorClass,
    pub message: String,
    /// Lost to another request's failure, not its own: its stream parser lived in a plugin
    /// instance that another stream's trap, timeout or memory cap destroyed. Reports name the
    /// cause before these.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub collateral: bool,
}

/// One request, as measured. Times are relative to the level's start
/// (seconds) or durations (milliseconds), all from the host's monotonic clock,
/// taken when bytes arrived and before any parsing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestRecord {
    /// Issue order within the level.
    pub index: u64,
    /// Warm-up requests are kept but excluded from every statistic.
    pub warmup: bool,
    /// When the schedule meant the request to start.
    pub intended_start_s: f64,
    /// When its first byte was handed to the connection.
    pub send_s: f64,
    /// Send − intended start: time spent waiting for a concurrency slot.
    pub queue_ms: f64,
    /// First content-carrying event − send.
    pub ttft_ms: Option<f64>,
    /// Last content-carrying event − send.
    pub e2el_ms: Option<f64>,
    /// End of the response (or of the failure) − send.
    pub latency_ms: f64,
    /// Gaps between successive content-carrying events.
    pub itl_ms: Vec<f64>,
    /// Content-carrying events received.
    pub content_events: u32,
    /// Prompt tokens as counted by the client tokenizer.
    pub input_tokens: u32,
    /// Prompt tokens as reported by the server.
    pub prompt_tokens_server: Option<u32>,
    /// Prompt tokens the server served from its prefix cache, when its usage says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_prompt_tokens_server: Option<u32>,
    /// Output tokens asked for (`max_tokens`; absent in results written before 0.2).
    #[serde(default)]
    pub requested_output_tokens: Option<u32>,
    /// Output tokens as reported by the server.
    pub output_tokens_server: Option<u32>,
    /// Output tokens counted by the client tokenizer on the generated text.
    pub output_tokens_client: Option<u32>,
    /// The count used in every statistic: the server's when it gave one.
    pub output_tokens: u32,
    pub finish_reason: Option<String>,
    pub http_status: Option<u16>,
    pub error: Option<RequestError>,
    /// What the connection layer did for this request (absent in results before 0.2).
    #[serde(default)]
    pub connection: ConnectionUse,
    /// Generated text, kept only until the client token count is taken.
    #[serde(skip)]
    #[schemars(skip)]
    pub text: String,
}

impl RequestRecord {
    /// Whether the request completed without error.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// Time per output token after the first, as vLLM defines it.
    pub fn tpot_ms(&self) -> Option<f64> {
        match (self.ttft_ms, self.e2el_ms) {
            (Some(ttft), Some(e2el)) if self.output_tokens > 1 && self.succeeded() => {
                Some((e2el - ttft) / f64::from(self.output_tokens - 1))
            }
            _ => None,
        }
    }

    /// Prompt tokens as counted in every statistic: the server's when it gave a count (its
    /// own tokenizer, chat template included), else the client tokenizer's.
    pub fn counted_input_tokens(&self) -> u32 {
        self.prompt_tokens_server.unwrap_or(self.input_tokens)
    }

    /// Settle `output_tokens` from the server's count, else the client's.
    pub fn settle_output_tokens(&mut self) {
        self.output_tokens = self
            .output_tokens_server
            .or(self.output_tokens_client)
            .unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpot_follows_vllm() {
        let r = RequestRecord {
            ttft_ms: Some(50.0),
            e2el_ms: Some(50.0 + 127.0 * 10.0),
            output_tokens: 128,
            ..Default::default()
        };
        assert!((r.tpot_ms().unwrap() - 10.0).abs() < 1e-9);
        let one = RequestRecord {
            output_tokens: 1,
            ..r.clone()
        };
        assert_eq!(one.tpot_ms(), None);
    }

    #[test]
    fn server_count_wins_over_client_count() {
        let mut r = RequestRecord {
            output_tokens_server: Some(10),
            output_tokens_client: Some(12),
            ..Default::default()
        };
        r.settle_output_tokens();
        assert_eq!(r.output_tokens, 10);
        r.output_tokens_server = None;
        r.settle_output_tokens();
        assert_eq!(r.output_tokens, 12);
    }
}
