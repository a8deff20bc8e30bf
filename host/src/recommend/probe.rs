//! Running the search: each probe is a one-level closed-loop run of the user's workload at one
//! concurrency, with a warm-up of one request per client and the clients' starts spread over
//! one request's duration (as last measured), so they do not send, and finish, in lockstep.

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::search::{self, Outcome, Probe, SearchConfig, Step};
use crate::engine::{Bound, LevelPlan, Load, ProgressEvent, Warmup};
use crate::metrics::LevelSummary;
use crate::plugin::Runtime;
use crate::runner::{self, RunError, RunOutput, RunSpec};

/// The longest ramp: one request's median duration, up to this.
const MAX_RAMP: Duration = Duration::from_secs(10);

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
}

/// Probes `template`'s workload (its levels are replaced) until `cfg` is satisfied or `budget`
/// is spent. `on_probe` hears of each probe as it ends.
pub async fn find(
    template: &RunSpec,
    cfg: &SearchConfig,
    runtime: &Runtime,
    budget: Duration,
    cancel: CancellationToken,
    mut on_probe: impl FnMut(u32, &LevelSummary),
) -> Searched {
    let started = Instant::now();
    let mut probes: Vec<Probe> = Vec::new();
    let mut searched = Searched {
        outcome: None,
        probes: Vec::new(),
        outputs: Vec::new(),
        out_of_time: false,
        error: None,
    };
    let mut ramp = Duration::ZERO;
    loop {
        let (concurrency, requests) = match search::next(cfg, &probes) {
            Step::Done(outcome) => {
                searched.outcome = Some(outcome);
                return searched;
            }
            Step::Probe {
                concurrency,
                requests,
            } => (concurrency, requests),
        };
        if started.elapsed() >= budget || cancel.is_cancelled() {
            searched.out_of_time = !cancel.is_cancelled();
            searched.outcome = search::current(cfg, &probes);
            return searched;
        }
        let mut spec = template.clone();
        spec.levels = vec![LevelPlan {
            load: Load::Concurrency { concurrency },
            bound: Bound::Requests(requests),
            warmup: Warmup::Requests(u64::from(concurrency)),
            seed: template.seed.wrapping_add(probes.len() as u64),
        }];
        spec.ramp = ramp;
        // Each probe sizes its prompts anew; the server's count is the same every time.
        let (events, _) = broadcast::channel::<ProgressEvent>(64);
        match runner::execute(&spec, runtime, events, cancel.clone()).await {
            Ok(out) => {
                let Some(level) = out.result.levels.first() else {
                    searched.outcome = search::current(cfg, &probes);
                    return searched;
                };
                let s = level.summary.clone();
                let good = s.goodput.as_ref().map_or(0, |g| g.good);
                probes.push(Probe {
                    concurrency,
                    requests: s.requests,
                    good,
                });
                if s.e2el_ms.count > 0 {
                    ramp = Duration::from_secs_f64(s.e2el_ms.p50 / 1e3).min(MAX_RAMP);
                }
                on_probe(concurrency, &s);
                searched.probes.push((concurrency, s));
                let interrupted = out.result.interrupted;
                searched.outputs.push(out);
                if interrupted {
                    searched.outcome = search::current(cfg, &probes);
                    return searched;
                }
            }
            Err(e) => {
                searched.error = Some(e);
                searched.outcome = search::current(cfg, &probes);
                return searched;
            }
        }
    }
}
