//! Running the search: each probe is a one-level closed-loop run of the user's workload at one
//! concurrency, with a warm-up of one request per client and the clients' starts spread over one
//! cycle of a client at that concurrency, so their phases are even (the state the simulator's
//! closed form assumes, and that fixed request lengths then preserve). A ramp shorter than the
//! cycle bunches the clients' prefills and shows a TPOT above what the server sustains with
//! spread arrivals: a first version spread starts over the previous probe's median E2EL and
//! found 126 where the closed form says 165 (a100, 512/128, ttft 2 s + tpot 100 ms). The cycle
//! at the new concurrency comes from Little's law, c / throughput, with the throughput
//! interpolated between measured probes, or extrapolated from the last two below by how well
//! they scaled.
//!
//! Which probe comes next, and what the probes mean, is the recommendation policy's call (a
//! component: `plugins/recommend` by default); this file only runs what it asks for.

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::engine::ProgressEvent;
use crate::metrics::{Distribution, LevelSummary};
use crate::plan::{Bound, LevelPlan, Load, Warmup};
use crate::plugin::{
    Outcome, PluginError, PolicyStep, ProbeSummary, RecommendGoal, RecommendPolicy, Runtime,
};
use crate::runner::{self, RunError, RunOutput, RunSpec};

/// The longest ramp.
const MAX_RAMP: Duration = Duration::from_secs(120);

/// Requests per second at `c`, from `measured` (concurrency, requests per second) sorted by
/// concurrency: interpolated between the probes around `c`; above them, grown from the last
/// as the last two grew (linear scaling keeps growing, a saturated server stays flat).
fn throughput_at(c: u32, measured: &[(u32, f64)]) -> Option<f64> {
    let c = f64::from(c);
    let below: Vec<(f64, f64)> = measured
        .iter()
        .filter(|(m, _)| f64::from(*m) <= c)
        .map(|&(m, x)| (f64::from(m), x))
        .collect();
    let above = measured
        .iter()
        .find(|(m, _)| f64::from(*m) > c)
        .map(|&(m, x)| (f64::from(m), x));
    let &(ca, xa) = below.last()?;
    if let Some((cb, xb)) = above {
        return Some(xa + (xb - xa) * (c - ca) / (cb - ca));
    }
    let efficiency = match below.len().checked_sub(2).map(|i| below[i]) {
        Some((c0, x0)) if x0 > 0.0 && ca > c0 => {
            ((xa / x0 - 1.0) / (ca / c0 - 1.0)).clamp(0.0, 1.0)
        }
        _ => 1.0,
    };
    Some(xa * (1.0 + efficiency * (c / ca - 1.0)))
}

/// One cycle of a closed-loop client at `c`: c / throughput (Little's law).
fn cycle_at(c: u32, measured: &[(u32, f64)]) -> Duration {
    throughput_at(c, measured)
        .filter(|x| *x > 0.0)
        .map_or(Duration::ZERO, |x| {
            Duration::from_secs_f64(f64::from(c) / x).min(MAX_RAMP)
        })
}

/// What the search measured and concluded.
pub struct Searched {
    /// `None` when no probe was decided (the first one failed to run).
    pub outcome: Option<Outcome>,
    /// Every probe's concurrency and summary, in the order run.
    pub probes: Vec<(u32, LevelSummary)>,
    /// Every probe's whole output, for saving them as one run.
    pub outputs: Vec<RunOutput>,
    /// The time budget ran out before the bracket was as tight as asked.
    pub out_of_time: bool,
    /// Why the search stopped early, when a probe could not run.
    pub error: Option<RunError>,
    /// Why the search stopped early, when the policy failed (trapped, timed out, or answered
    /// what the host will not obey).
    pub policy_error: Option<PluginError>,
    /// Why the search stopped early, when every request of every probe so far failed: a server
    /// that answers nothing has no capacity to find, and "C* = 0" would blame the SLO.
    pub dead_server: Option<String>,
}

/// What the errors of a level in which no request succeeded say, most common class first.
fn all_failed(concurrency: u32, s: &LevelSummary) -> String {
    let mut classes: Vec<_> = s.errors.iter().collect();
    classes.sort_by_key(|(_, e)| std::cmp::Reverse(e.count));
    let said: Vec<String> = classes
        .iter()
        .map(|(class, e)| match e.first_messages.first() {
            Some(m) => format!("{} {class} ({m})", e.count),
            None => format!("{} {class}", e.count),
        })
        .collect();
    format!(
        "no request succeeded at c={concurrency}: {} of {} failed: {}",
        s.failed,
        s.requests,
        said.join(", ")
    )
}

/// What the policy is told of one probe.
fn probe_summary(concurrency: u32, s: &LevelSummary) -> ProbeSummary {
    // A distribution that measured nothing reads as absent, never as 0 ms.
    let ms = |d: &Distribution, v: f64| (d.count > 0).then_some(v);
    ProbeSummary {
        concurrency,
        requests: s.requests,
        good: s.goodput.as_ref().map_or(0, |g| g.good),
        failed: s.failed,
        request_throughput: s.request_throughput,
        output_throughput: s.output_throughput,
        ttft_p50_ms: ms(&s.ttft_ms, s.ttft_ms.p50),
        ttft_p99_ms: ms(&s.ttft_ms, s.ttft_ms.p99),
        tpot_p50_ms: ms(&s.tpot_ms, s.tpot_ms.p50),
        tpot_p99_ms: ms(&s.tpot_ms, s.tpot_ms.p99),
        e2el_p50_ms: ms(&s.e2el_ms, s.e2el_ms.p50),
        e2el_p99_ms: ms(&s.e2el_ms, s.e2el_ms.p99),
    }
}

impl Searched {
    /// Stop here: the answer is the policy's best reading of the probes so far.
    fn cut_short(
        mut self,
        policy: &RecommendPolicy,
        goal: &RecommendGoal,
        probes: &[ProbeSummary],
    ) -> Self {
        match policy.decide(goal, probes) {
            Ok(outcome) => self.outcome = outcome,
            Err(e) => self.policy_error = Some(e),
        }
        self
    }
}

#[allow(clippy::too_many_arguments)]
/// Probes `template`'s workload (its levels are replaced) as `policy` asks, until it is done or
/// `budget` is spent. Each probe's progress goes to `events`; `on_probe` hears of each probe
/// as it ends.
pub async fn find(
    template: &RunSpec,
    policy: &RecommendPolicy,
    goal: &RecommendGoal,
    runtime: &Runtime,
    budget: Duration,
    cancel: CancellationToken,
    events: &broadcast::Sender<ProgressEvent>,
    mut on_probe: impl FnMut(u32, &LevelSummary),
) -> Searched {
    let started = Instant::now();
    let mut probes: Vec<ProbeSummary> = Vec::new();
    let mut searched = Searched {
        outcome: None,
        probes: Vec::new(),
        outputs: Vec::new(),
        out_of_time: false,
        error: None,
        policy_error: None,
        dead_server: None,
    };
    // (concurrency, requests per second) of every probe, sorted, for the ramp.
    let mut measured: Vec<(u32, f64)> = Vec::new();
    loop {
        // The policy runs between probes, when nothing is being timed: its call (bounded by the
        // plugin deadline) may block this task without distorting a measurement.
        let (concurrency, requests) = match policy.next(goal, &probes) {
            Ok(PolicyStep::Done(outcome)) => {
                searched.outcome = Some(outcome);
                return searched;
            }
            Ok(PolicyStep::Probe {
                concurrency,
                requests,
            }) => (concurrency, requests),
            Err(e) => {
                // A broken policy's other answers are not trusted either.
                searched.policy_error = Some(e);
                return searched;
            }
        };
        if started.elapsed() >= budget || cancel.is_cancelled() {
            searched.out_of_time = !cancel.is_cancelled();
            return searched.cut_short(policy, goal, &probes);
        }
        let mut spec = template.clone();
        spec.levels = vec![LevelPlan {
            load: Load::Concurrency { concurrency },
            bound: Bound::Requests(requests),
            warmup: Warmup::Requests(u64::from(concurrency)),
            seed: template.seed.wrapping_add(probes.len() as u64),
        }];
        spec.ramp = cycle_at(concurrency, &measured);
        // The version is the server's, not the probe's: the first probe's result keeps it.
        spec.probe_server_version = template.probe_server_version && probes.is_empty();
        // One pre-flight before the first probe says whether the server answers at all.
        spec.preflight = template.preflight && searched.probes.is_empty();
        // Each probe sizes its prompts anew; the server's count is the same every time.
        match runner::execute(&spec, runtime, events.clone(), cancel.clone()).await {
            Ok(out) => {
                let Some(level) = out.result.levels.first() else {
                    return searched.cut_short(policy, goal, &probes);
                };
                let s = level.summary.clone();
                if s.completed == 0 && searched.probes.iter().all(|(_, p)| p.completed == 0) {
                    searched.dead_server = Some(all_failed(concurrency, &s));
                    searched.probes.push((concurrency, s));
                    searched.outputs.push(out);
                    return searched;
                }
                probes.push(probe_summary(concurrency, &s));
                if s.request_throughput > 0.0 {
                    measured.retain(|(m, _)| *m != concurrency);
                    measured.push((concurrency, s.request_throughput));
                    measured.sort_by_key(|(m, _)| *m);
                }
                on_probe(concurrency, &s);
                searched.probes.push((concurrency, s));
                let interrupted = out.result.interrupted;
                searched.outputs.push(out);
                if interrupted {
                    return searched.cut_short(policy, goal, &probes);
                }
            }
            Err(e) => {
                searched.error = Some(e);
                return searched.cut_short(policy, goal, &probes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_is_interpolated_and_extrapolated_by_how_it_scaled() {
        // Linear so far: doubling the clients doubles the estimate.
        let linear = [(1, 1.0), (2, 2.0)];
        assert_eq!(throughput_at(4, &linear), Some(4.0));
        // Saturated: flat.
        let flat = [(64, 11.0), (128, 11.0)];
        assert_eq!(throughput_at(256, &flat), Some(11.0));
        // Between two probes: on the line joining them.
        let around = [(64, 11.0), (128, 12.4), (256, 13.2)];
        let x = throughput_at(160, &around).expect("estimate");
        assert!((x - 12.6).abs() < 1e-9, "{x}");
        // Little's law: 160 clients at 12.6 req/s cycle in 12.7 s.
        assert_eq!(
            cycle_at(160, &around),
            Duration::from_secs_f64(160.0 / 12.6)
        );
        assert_eq!(cycle_at(1, &[]), Duration::ZERO);
    }
}
