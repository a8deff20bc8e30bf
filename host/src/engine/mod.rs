//! The load engine: schedules requests, sends them over pooled connections,
//! and times every response on byte arrival, before any parsing.
pub mod client;
pub mod client_load;
pub mod connection;
pub mod h1;
pub mod preflight;
pub mod progress;
pub mod request;
pub mod schedule;
pub mod stages;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use crate::plan::arrivals::arrival_offsets;
pub use client::{ClientError, HyperClient, Target, new_client};
pub use connection::{ConnectionPool, SendError};
pub use progress::{Live, ProgressEvent, Snapshot};
pub use schedule::LevelRun;

use crate::metrics::RequestRecord;
use crate::plan::{Bound, LevelPlan, Shard, StartSchedule, Warmup};
use crate::plugin::{Adapter, GenerationRequest};

/// How often a progress tick is published.
const TICK: Duration = Duration::from_millis(250);

/// One prepared request: what the adapter is asked to send.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub request: GenerationRequest,
    /// The prompt's length by the client tokenizer.
    pub input_tokens: u32,
}

/// Everything the levels of one run share.
pub struct RunContext {
    /// Connections for the generation requests.
    pub pool: ConnectionPool,
    pub target: Target,
    pub adapter: Arc<Adapter>,
    pub timeout: Duration,
    /// Which chunks are token arrivals.
    pub metric_mode: crate::metrics::MetricMode,
    /// Requests are taken in order, cycling when a level needs more.
    pub requests: Vec<PreparedRequest>,
    /// Where finished records go as they complete (the store saves them).
    pub record_sink: Option<RecordSink>,
    /// The model the server says it served, from the first response that names one.
    pub served_model: std::sync::OnceLock<String>,
    /// Closed-loop clients start spread over this time (client i of N at i·ramp/N), so that
    /// they do not send, and then finish, in lockstep. Zero starts them together.
    pub ramp: Duration,
    /// Which share of each level this process runs.
    pub shard: Shard,
    /// When each level starts on the wall clock; none: each as soon as the one before ends.
    pub start: Option<StartSchedule>,
}

/// Records as they complete, tagged with their level's index, so a writer
/// can persist a run while it goes. Records carry the engine's raw counts:
/// client token counts are settled only after the level.
#[derive(Debug)]
pub struct RecordSink {
    tx: tokio::sync::mpsc::UnboundedSender<(usize, RequestRecord)>,
    level: std::sync::atomic::AtomicUsize,
}

impl RecordSink {
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<(usize, RequestRecord)>) -> RecordSink {
        RecordSink {
            tx,
            level: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn set_level(&self, index: usize) {
        self.level
            .store(index, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sends `r` under `level`, or the current level's index.
    fn send(&self, level: Option<usize>, r: &RequestRecord) {
        let level = level.unwrap_or_else(|| self.level.load(std::sync::atomic::Ordering::Relaxed));
        // The generated text is not stored; a closed receiver is not an error.
        let _ = self.tx.send((
            level,
            RequestRecord {
                text: String::new(),
                ..r.clone()
            },
        ));
    }
}

/// Wait for a wall-clock instant (at once when it has passed); false when cancelled first.
async fn wait_until(due: std::time::SystemTime, cancel: &CancellationToken) -> bool {
    let Ok(left) = due.duration_since(std::time::SystemTime::now()) else {
        return true;
    };
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(left) => true,
    }
}

/// Run the levels in turn. Stops early, keeping what was measured, when
/// `cancel` fires.
pub async fn run_levels(
    run: Arc<RunContext>,
    plans: &[LevelPlan],
    events: broadcast::Sender<ProgressEvent>,
    cancel: CancellationToken,
) -> Vec<(LevelPlan, LevelRun)> {
    let live = Arc::new(Live::new(events));
    let mut out = Vec::new();
    if run.requests.is_empty() {
        return out;
    }
    if let Some(profile) = crate::plan::Profile::of(plans) {
        if let Some(start) = &run.start
            && !wait_until(start.level(0), &cancel).await
        {
            return out;
        }
        live.publish(ProgressEvent::LevelStarted {
            level: "stages".to_owned(),
            index: 0,
            of: 1,
            planned: None,
        });
        let ticker = ticker(&live);
        let runs = stages::run(&run, plans, &profile, &live, &cancel).await;
        ticker.abort();
        live.publish(ProgressEvent::LevelFinished(live.snapshot()));
        return plans.iter().copied().zip(runs).collect();
    }
    for (i, plan) in plans.iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        if let Some(start) = &run.start
            && !wait_until(start.level(i), &cancel).await
        {
            break;
        }
        if let Some(sink) = &run.record_sink {
            sink.set_level(i);
        }
        live.publish(ProgressEvent::LevelStarted {
            level: plan.load.label(),
            index: i,
            of: plans.len(),
            planned: match (plan.bound, plan.warmup) {
                (Bound::Requests(n), Warmup::Requests(w)) => Some(run.shard.owned_in(0, n + w)),
                (Bound::Requests(n), Warmup::None) => Some(run.shard.owned_in(0, n)),
                _ => None,
            },
        });
        let ticker = ticker(&live);
        let level = schedule::run_level(run.clone(), *plan, live.clone(), cancel.clone()).await;
        ticker.abort();
        live.publish(ProgressEvent::LevelFinished(live.snapshot()));
        let stop = level.interrupted;
        out.push((*plan, level));
        if stop {
            break;
        }
    }
    out
}

/// Publishes a progress snapshot every tick until aborted.
fn ticker(live: &Arc<Live>) -> tokio::task::JoinHandle<()> {
    let live = live.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            live.publish(ProgressEvent::Tick(live.snapshot()));
        }
    })
}
