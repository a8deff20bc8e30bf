//! Types and the trait for SLO policies: the per-request verdict behind
//! goodput.

/// What was measured for one request. Times are milliseconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurement {
    /// Whether the request completed without error.
    pub succeeded: bool,
    /// The error class when the request failed (`connect`, `timeout`, ...).
    pub error_class: Option<String>,
    /// Time to first token.
    pub ttft_ms: Option<f64>,
    /// Time per output token after the first.
    pub tpot_ms: Option<f64>,
    /// End-to-end latency.
    pub e2el_ms: Option<f64>,
    /// The gaps between content events, in order.
    pub itl_ms: Vec<f64>,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
}

/// One objective: `metric` (`ttft`, `tpot`, `itl` or `e2el` for the default
/// policy) must not exceed `threshold_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// The metric's name.
    pub metric: String,
    /// The largest acceptable value, in milliseconds.
    pub threshold_ms: f64,
}

impl Objective {
    /// An objective `metric <= threshold_ms`.
    pub fn new(metric: impl Into<String>, threshold_ms: f64) -> Self {
        Objective {
            metric: metric.into(),
            threshold_ms,
        }
    }
}

/// Whether one request was good, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The request counts towards goodput.
    pub good: bool,
    /// Why the request is not good; empty when it is.
    pub reasons: Vec<String>,
}

/// What a policy is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Short name, e.g. `default`.
    pub name: String,
    /// The policy's own version.
    pub version: String,
    /// One line for `plugin list`.
    pub description: String,
}

/// An SLO policy. Register the implementing type with
/// [`crate::register_slo_policy!`].
pub trait SloPolicy: 'static {
    /// Name, version and description.
    fn info() -> PolicyInfo;

    /// Reject objectives the policy does not understand, before a run starts.
    /// The message should name the offending objective.
    fn check_objectives(objectives: &[Objective]) -> Result<(), String>;

    /// The verdict for one request.
    fn evaluate(m: &Measurement, objectives: &[Objective]) -> Verdict;
}
