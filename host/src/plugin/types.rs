//! Host-native mirrors of the WIT types, so the rest of the host never names
//! generated bindings, plus the conversions to and from them.

pub use llm_loadtest_sdk::framing::Framing;

use super::bindings::adapter::llm_loadtest::plugin::types as wit;
use super::bindings::slo::exports::llm_loadtest::plugin::slo_policy as wit_slo;
use super::bindings::tokenizer::exports::llm_loadtest::plugin::tokenizer as wit_tok;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What to send: a raw completion prompt, or a chat conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Text(String),
    Chat(Vec<Message>),
}

/// A generation the host wants sent; the adapter turns it into bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub model: String,
    pub prompt: Prompt,
    pub max_tokens: u32,
    /// Ask the server for at least this many tokens, where it supports it.
    pub min_tokens: Option<u32>,
    /// Ask the server to keep generating past end-of-sequence.
    pub ignore_eos: bool,
    pub temperature: Option<f32>,
    pub stream: bool,
    /// A JSON object whose fields are merged into the request body.
    pub extra_body: Option<String>,
}

/// The request the host sends; `path` is joined to the server's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How the response to this request is framed.
    pub framing: Framing,
}

/// What to count: `prompt` as `model` would receive it in a generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizeQuery {
    pub model: String,
    pub prompt: Prompt,
}

/// What one answer to a tokenize request meant.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizeStep {
    /// The server's count for the whole query.
    Count(u32),
    /// Send this request and hand its answer back as the next step.
    Then(HttpRequest),
}

/// Generated text in one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDelta {
    pub text: String,
    /// The number of tokens this delta carries, when the server says.
    pub tokens: Option<u32>,
}

/// Token counts reported by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub cached_tokens: Option<u32>,
}

/// What one framed message meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Generated output text.
    Token(TokenDelta),
    /// Reasoning / thinking output; counts as generated content.
    Reasoning(TokenDelta),
    Usage(Usage),
    /// The server's finish reason (`stop`, `length`, ...).
    Finish(String),
    /// The server reported an error inside the stream.
    Error(String),
    /// The stream is complete.
    Done,
}

/// What an adapter is, as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Framing of streaming responses (the default for replays).
    pub framing: Framing,
    /// Path used when the request does not choose one.
    pub default_path: String,
    /// Free-form capability names (`completions`, `chat`, `usage`, ...).
    pub capabilities: Vec<String>,
}

/// What an SLO policy is, as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub name: String,
    pub version: String,
    pub description: String,
}

/// What `recommend` was asked, as a recommendation policy sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecommendGoal {
    /// Share of requests that must meet every objective, in (0, 1).
    pub target: f64,
    /// The largest concurrency a probe may use.
    pub max_concurrency: u32,
    pub peak_concurrency: u32,
    /// `--policy-option key=value`, in order.
    pub options: Vec<(String, String)>,
}

/// What one probe measured, as a recommendation policy sees it. Latencies are milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProbeSummary {
    pub concurrency: u32,
    pub requests: u64,
    /// Requests that met every objective (failures never do).
    pub good: u64,
    pub failed: u64,
    pub request_throughput: f64,
    pub output_throughput: f64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub tpot_p50_ms: Option<f64>,
    pub tpot_p99_ms: Option<f64>,
    pub e2el_p50_ms: Option<f64>,
    pub e2el_p99_ms: Option<f64>,
}

/// Where C* lies, as a recommendation policy concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// C* = `lo`: it meets the target and `hi`, the smallest measured concurrency above it,
    /// does not.
    Found { lo: u32, hi: u32 },
    /// Even concurrency 1 misses the target.
    None,
    /// This concurrency meets the target and nothing larger was measured.
    AtLeast(u32),
}

/// A recommendation policy's next move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyStep {
    /// Measure `concurrency` clients over `requests` requests.
    Probe {
        concurrency: u32,
        requests: u64,
    },
    Done(Outcome),
}

/// What was measured for one request. Times are milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurement {
    pub succeeded: bool,
    /// The error class when the request failed (`connect`, `timeout`, ...).
    pub error_class: Option<String>,
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
    /// The gaps between content events, in order.
    pub itl_ms: Vec<f64>,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// One objective: `metric` is `ttft`, `tpot`, `itl` or `e2el`.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    pub metric: String,
    pub threshold_ms: f64,
}

/// A policy's verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub good: bool,
    /// Why the request is not good; empty when it is.
    pub reasons: Vec<String>,
}

pub(crate) fn framing_from_wit(f: wit::Framing) -> Framing {
    match f {
        wit::Framing::Sse => Framing::Sse,
        wit::Framing::Ndjson => Framing::Ndjson,
        wit::Framing::WholeBody => Framing::WholeBody,
    }
}

impl From<&Prompt> for wit::Prompt {
    fn from(p: &Prompt) -> Self {
        match p {
            Prompt::Text(t) => wit::Prompt::Text(t.clone()),
            Prompt::Chat(messages) => wit::Prompt::Chat(
                messages
                    .iter()
                    .map(|m| wit::Message {
                        role: m.role.clone(),
                        content: m.content.clone(),
                    })
                    .collect(),
            ),
        }
    }
}

impl From<&TokenizeQuery> for wit_tok::TokenizeQuery {
    fn from(q: &TokenizeQuery) -> Self {
        wit_tok::TokenizeQuery {
            model: q.model.clone(),
            prompt: wit::Prompt::from(&q.prompt),
        }
    }
}

impl From<wit_tok::TokenizeStep> for TokenizeStep {
    fn from(s: wit_tok::TokenizeStep) -> Self {
        match s {
            wit_tok::TokenizeStep::Count(n) => TokenizeStep::Count(n),
            wit_tok::TokenizeStep::Then(r) => TokenizeStep::Then(HttpRequest::from(r)),
        }
    }
}

impl From<&GenerationRequest> for wit::GenerationRequest {
    fn from(r: &GenerationRequest) -> Self {
        wit::GenerationRequest {
            model: r.model.clone(),
            prompt: wit::Prompt::from(&r.prompt),
            max_tokens: r.max_tokens,
            min_tokens: r.min_tokens,
            ignore_eos: r.ignore_eos,
            temperature: r.temperature,
            stream: r.stream,
            extra_body: r.extra_body.clone(),
        }
    }
}

impl From<wit::HttpRequest> for HttpRequest {
    fn from(r: wit::HttpRequest) -> Self {
        HttpRequest {
            method: r.method,
            path: r.path,
            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: r.body,
            framing: framing_from_wit(r.framing),
        }
    }
}

fn delta(d: wit::TokenDelta) -> TokenDelta {
    TokenDelta {
        text: d.text,
        tokens: d.tokens,
    }
}

impl From<wit::Event> for Event {
    fn from(e: wit::Event) -> Self {
        match e {
            wit::Event::Token(d) => Event::Token(delta(d)),
            wit::Event::Reasoning(d) => Event::Reasoning(delta(d)),
            wit::Event::Usage(u) => Event::Usage(Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                cached_tokens: u.cached_tokens,
            }),
            wit::Event::Finish(s) => Event::Finish(s),
            wit::Event::Error(s) => Event::Error(s),
            wit::Event::Done => Event::Done,
        }
    }
}

impl From<wit::AdapterInfo> for AdapterInfo {
    fn from(i: wit::AdapterInfo) -> Self {
        AdapterInfo {
            name: i.name,
            version: i.version,
            description: i.description,
            framing: framing_from_wit(i.framing),
            default_path: i.default_path,
            capabilities: i.capabilities,
        }
    }
}

impl From<wit_slo::PolicyInfo> for PolicyInfo {
    fn from(i: wit_slo::PolicyInfo) -> Self {
        PolicyInfo {
            name: i.name,
            version: i.version,
            description: i.description,
        }
    }
}

impl From<&Measurement> for wit_slo::Measurement {
    fn from(m: &Measurement) -> Self {
        wit_slo::Measurement {
            succeeded: m.succeeded,
            error_class: m.error_class.clone(),
            ttft_ms: m.ttft_ms,
            tpot_ms: m.tpot_ms,
            e2el_ms: m.e2el_ms,
            itl_ms: m.itl_ms.clone(),
            input_tokens: m.input_tokens,
            output_tokens: m.output_tokens,
        }
    }
}

impl From<&Objective> for wit_slo::Objective {
    fn from(o: &Objective) -> Self {
        wit_slo::Objective {
            metric: o.metric.clone(),
            threshold_ms: o.threshold_ms,
        }
    }
}

impl From<wit_slo::Verdict> for Verdict {
    fn from(v: wit_slo::Verdict) -> Self {
        Verdict {
            good: v.good,
            reasons: v.reasons,
        }
    }
}
