//! Types and the trait for recommendation policies: which concurrency `recommend` measures next,
//! and what the probes so far say C*, the largest concurrency that meets the SLO attainment
//! target, is.
//!
//! The host runs every probe (a closed-loop level of the user's workload, ramped and warmed up)
//! and judges every request with the SLO policy; a recommendation policy sees only the results,
//! so it can never distort a measurement.

pub use crate::slo::PolicyInfo;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Goal {
    /// Share of requests that must meet every objective, in (0, 1): `0.95`.
    pub target: f64,
    /// The largest concurrency a probe may use.
    pub max_concurrency: u32,
    /// The concurrent users being planned for (the host divides by C* itself).
    pub peak_concurrency: u32,
    /// Policy-specific settings, `--policy-option key=value` in the order given. Refuse (an
    /// `Err` from [`RecommendPolicy::next`]) a key the policy does not know.
    pub options: Vec<(String, String)>,
}

/// What one probe measured after its warm-up. Latencies are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProbeResult {
    /// Clients in the closed loop.
    pub concurrency: u32,
    /// Requests measured.
    pub requests: u64,
    /// Requests that met every objective; failed requests are never good.
    pub good: u64,
    /// Requests that failed (connect, timeout, HTTP error, ...).
    pub failed: u64,
    /// Completed requests per second.
    pub request_throughput: f64,
    /// Generated tokens per second.
    pub output_throughput: f64,
    /// Median time to first token.
    pub ttft_p50_ms: Option<f64>,
    /// 99th percentile time to first token.
    pub ttft_p99_ms: Option<f64>,
    /// Median time per output token.
    pub tpot_p50_ms: Option<f64>,
    /// 99th percentile time per output token.
    pub tpot_p99_ms: Option<f64>,
    /// Median end-to-end latency.
    pub e2el_p50_ms: Option<f64>,
    /// 99th percentile end-to-end latency.
    pub e2el_p99_ms: Option<f64>,
}

/// Where C* lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// C* = `lo`: it meets the target and `hi`, the smallest measured concurrency above it,
    /// does not.
    Found {
        /// The largest concurrency that meets the target.
        lo: u32,
        /// The smallest concurrency above `lo` that misses it.
        hi: u32,
    },
    /// Even concurrency 1 misses the target.
    None,
    /// This concurrency meets the target and nothing larger was measured: C* is at least it.
    AtLeast(u32),
}

/// A policy's next move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Measure `concurrency` clients over `requests` requests, then ask again.
    Probe {
        /// Clients in the closed loop (1 ..= the goal's `max_concurrency`).
        concurrency: u32,
        /// Requests to measure after the warm-up (at least 1).
        requests: u64,
    },
    /// The search is over.
    Done(Outcome),
}

/// A recommendation policy. Register the implementing type with
/// [`crate::register_recommend_policy!`].
///
/// The host calls [`RecommendPolicy::next`] with every probe so far (empty at the start),
/// runs the probe it returns, and asks again until it says [`Step::Done`]. When the search
/// stops first (the time budget ran out, a probe could not run, the user interrupted), the host
/// asks [`RecommendPolicy::decide`] for the best answer the probes give. Both are called on
/// fresh data each time: keep no state between calls.
///
/// ```
/// use llm_loadtest_sdk::recommend::{Goal, Outcome, PolicyInfo, ProbeResult, RecommendPolicy, Step};
///
/// /// Tries 1, 2, 4, ... and stops at the first that misses the target by its point estimate.
/// pub struct Doubling;
///
/// fn meets(goal: &Goal, p: &ProbeResult) -> bool {
///     p.requests > 0 && p.good as f64 >= goal.target * p.requests as f64
/// }
///
/// impl RecommendPolicy for Doubling {
///     fn info() -> PolicyInfo {
///         PolicyInfo {
///             name: "doubling".into(),
///             version: "0.1.0".into(),
///             description: "powers of two, no repeats".into(),
///         }
///     }
///
///     fn next(goal: &Goal, probes: &[ProbeResult]) -> Result<Step, String> {
///         match probes.last() {
///             None => Ok(Step::Probe { concurrency: 1, requests: 100 }),
///             Some(p) if !meets(goal, p) => Ok(Step::Done(Self::decide(goal, probes).unwrap())),
///             Some(p) if p.concurrency >= goal.max_concurrency => {
///                 Ok(Step::Done(Outcome::AtLeast(p.concurrency)))
///             }
///             Some(p) => Ok(Step::Probe {
///                 concurrency: (p.concurrency * 2).min(goal.max_concurrency),
///                 requests: 100,
///             }),
///         }
///     }
///
///     fn decide(goal: &Goal, probes: &[ProbeResult]) -> Option<Outcome> {
///         let lo = probes.iter().filter(|p| meets(goal, p)).map(|p| p.concurrency).max();
///         let hi = probes.iter().filter(|p| !meets(goal, p)).map(|p| p.concurrency).min();
///         match (lo, hi) {
///             (Some(lo), Some(hi)) if hi > lo => Some(Outcome::Found { lo, hi }),
///             (Some(lo), _) => Some(Outcome::AtLeast(lo)),
///             (None, Some(1)) => Some(Outcome::None),
///             _ => None,
///         }
///     }
/// }
///
/// llm_loadtest_sdk::register_recommend_policy!(Doubling);
///
/// let goal = Goal { target: 0.95, max_concurrency: 64, peak_concurrency: 500, options: vec![] };
/// let probe = |concurrency, good| ProbeResult { concurrency, requests: 100, good, ..Default::default() };
/// let probes = [probe(1, 100), probe(2, 100), probe(4, 80)];
/// assert_eq!(Doubling::next(&goal, &probes), Ok(Step::Done(Outcome::Found { lo: 2, hi: 4 })));
/// ```
pub trait RecommendPolicy: 'static {
    /// Name, version and description.
    fn info() -> PolicyInfo;

    /// The next move after `probes`, every probe so far in the order run. `Err` when the goal is
    /// one this policy cannot serve; the message should say why.
    fn next(goal: &Goal, probes: &[ProbeResult]) -> Result<Step, String>;

    /// The best answer `probes` give when the search is cut short; `None` when no probe is
    /// decided either way.
    fn decide(goal: &Goal, probes: &[ProbeResult]) -> Option<Outcome>;
}
