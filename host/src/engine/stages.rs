//! A staged run (`--stages`, `--rate-stages`): one continuous schedule, computed ahead from the
//! stage profile (`plan::stages`), whose records are dealt to one level per stage by when each
//! request was due. No stage waits for the one before to drain: a client ramped down finishes
//! the request it is in, and an arrival due in a stage belongs to it wherever it ends.
//!
//! Each record's times count from its own stage's start, as a level's do, so every per-level
//! reading (summaries, the telemetry split, the journal) works on a stage unchanged.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::RunContext;
use super::progress::Live;
use super::schedule::{Dispatch, LevelRun, joined, one, send_when_due, stamped_since};
use crate::metrics::RequestRecord;
use crate::plan::{LevelPlan, Load, Profile, StageUnit};

/// Runs the stages `plans` (whose profile is `profile`) as one schedule; one [`LevelRun`] per
/// stage reached (a cancelled run stops at the stage it was in).
pub async fn run(
    run: &Arc<RunContext>,
    plans: &[LevelPlan],
    profile: &Profile,
    live: &Arc<Live>,
    cancel: &CancellationToken,
) -> Vec<LevelRun> {
    let start = Instant::now();
    let started_wall = SystemTime::now();
    let watch = super::client_load::Watch::start();
    let reads_before = run.pool.read_counts();
    let starts = profile.starts();
    // Shared by every client task rather than copied into each.
    let clock = Arc::new(Clock {
        start,
        starts: starts.clone(),
        profile: profile.clone(),
    });
    let labels: Vec<String> = plans.iter().map(|p| p.load.label()).collect();
    let label = match labels.as_slice() {
        [first, .., last] if labels.len() > 4 => {
            format!("{} stages: {first} … {last}", labels.len())
        }
        _ => labels.join(", "),
    };
    live.start_level(label, start);
    let records = match profile.unit {
        StageUnit::Clients => clients(run, &clock, live, cancel).await,
        StageUnit::Rate => {
            let (burstiness, max_concurrency) = match plans.first().map(|p| p.load) {
                Some(Load::Stage {
                    burstiness,
                    max_concurrency,
                    ..
                }) => (burstiness, max_concurrency),
                _ => (1.0, None),
            };
            let seed = plans.first().map_or(0, |p| p.seed);
            let schedule = profile.arrivals(burstiness, seed);
            arrivals(run, &clock, &schedule, max_concurrency, live, cancel).await
        }
    };
    let client = watch.finish(stamped_since(run, reads_before)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let interrupted = cancel.is_cancelled();
    let reached = if interrupted {
        profile.stage_at(elapsed) + 1
    } else {
        plans.len()
    };
    let mut per: Vec<Vec<RequestRecord>> = vec![Vec::new(); plans.len()];
    for (stage, r) in records {
        per[stage].push(r);
    }
    per.into_iter()
        .zip(&profile.stages)
        .zip(starts)
        .take(reached)
        .enumerate()
        .map(|(i, ((mut records, stage), at))| {
            records.sort_by_key(|r| r.index);
            let last = i + 1 == reached;
            LevelRun {
                records,
                interrupted: interrupted && last,
                // The last stage lasts until its last answer came.
                wall_s: if last {
                    (elapsed - at).max(0.0)
                } else {
                    stage.seconds
                },
                started: start + Duration::from_secs_f64(at),
                started_wall: started_wall + Duration::from_secs_f64(at),
                // The client's load is read over the whole staged run.
                client: Some(client.clone()),
            }
        })
        .collect()
}

/// Where a moment of the staged run falls.
struct Clock {
    start: Instant,
    starts: Vec<f64>,
    profile: Profile,
}

impl Clock {
    /// The request due at `due` (seconds into the run): its stage and that stage's start.
    fn dispatch(&self, index: u64, due: f64) -> (usize, Dispatch) {
        let stage = self.profile.stage_at(due);
        let d = Dispatch {
            index,
            intended: self.start + Duration::from_secs_f64(due),
            warmup: false,
            level_start: self.start + Duration::from_secs_f64(self.starts[stage]),
            level: Some(stage),
        };
        (stage, d)
    }
}

/// Closed loop: client k sends while the target is above k.
async fn clients(
    run: &Arc<RunContext>,
    clock: &Arc<Clock>,
    live: &Arc<Live>,
    cancel: &CancellationToken,
) -> Vec<(usize, RequestRecord)> {
    let next = Arc::new(AtomicU64::new(0));
    let shard = run.shard;
    let peak = clock.profile.peak().ceil() as u32;
    let mut tasks = tokio::task::JoinSet::new();
    for k in (0..peak).filter(|&k| shard.owns(u64::from(k))) {
        let intervals = clock.profile.active(k);
        let (run, live, cancel, next) = (run.clone(), live.clone(), cancel.clone(), next.clone());
        let clock = clock.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for (from, until) in intervals {
                let at = clock.start + Duration::from_secs_f64(from);
                tokio::select! {
                    _ = cancel.cancelled() => return mine,
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
                loop {
                    let due = clock.start.elapsed().as_secs_f64();
                    if due >= until || cancel.is_cancelled() {
                        break;
                    }
                    let index = shard.global(next.fetch_add(1, Ordering::Relaxed));
                    let (stage, d) = clock.dispatch(index, due);
                    match one(&run, &live, d, &cancel).await {
                        Some(r) => mine.push((stage, r)),
                        None => return mine,
                    }
                }
            }
            mine
        });
    }
    joined(tasks).await
}

/// Open loop: the schedule's arrivals (this shard's), each sent when due.
async fn arrivals(
    run: &Arc<RunContext>,
    clock: &Clock,
    schedule: &[f64],
    max_concurrency: Option<u32>,
    live: &Arc<Live>,
    cancel: &CancellationToken,
) -> Vec<(usize, RequestRecord)> {
    let shard = run.shard;
    let due = schedule
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.owns(*i as u64))
        .map(|(i, &t)| clock.dispatch(i as u64, t));
    send_when_due(run, due, max_concurrency, live, cancel).await
}
