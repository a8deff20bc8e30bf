//! Live progress, published as events: the terminal bar, and later the
//! WebSocket and Prometheus views, all read the same stream.
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::metrics::RequestRecord;

/// A point-in-time view of the running level.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Snapshot {
    pub level: String,
    pub elapsed_s: f64,
    pub sent: u64,
    pub completed: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub output_tokens: u64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub itl_p99_ms: Option<f64>,
}

/// What the engine publishes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ProgressEvent {
    LevelStarted {
        level: String,
        index: usize,
        of: usize,
        /// Requests planned (measured plus warm-up), when bounded by count.
        planned: Option<u64>,
    },
    Tick(Snapshot),
    LevelFinished(Snapshot),
}

struct State {
    level: String,
    start: Instant,
    sent: u64,
    completed: u64,
    failed: u64,
    in_flight: u64,
    output_tokens: u64,
    ttft_us: Histogram<u64>,
    itl_us: Histogram<u64>,
}

/// Counters shared by a level's tasks.
pub struct Live {
    state: Mutex<State>,
    tx: broadcast::Sender<ProgressEvent>,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("static bounds are valid")
}

impl Live {
    pub fn new(tx: broadcast::Sender<ProgressEvent>) -> Live {
        Live {
            state: Mutex::new(State {
                level: String::new(),
                start: Instant::now(),
                sent: 0,
                completed: 0,
                failed: 0,
                in_flight: 0,
                output_tokens: 0,
                ttft_us: hist(),
                itl_us: hist(),
            }),
            tx,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A poisoned lock only means a panic elsewhere; the counters stay usable.
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn publish(&self, event: ProgressEvent) {
        // No subscriber is fine.
        let _ = self.tx.send(event);
    }

    pub fn start_level(&self, level: String, start: Instant) {
        self.with(|s| {
            s.level = level;
            s.start = start;
            s.sent = 0;
            s.completed = 0;
            s.failed = 0;
            s.in_flight = 0;
            s.output_tokens = 0;
            s.ttft_us.reset();
            s.itl_us.reset();
        });
    }

    pub fn request_started(&self) {
        self.with(|s| {
            s.sent += 1;
            s.in_flight += 1;
        });
    }

    pub fn request_finished(&self, r: &RequestRecord) {
        self.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if r.succeeded() {
                s.completed += 1;
                // Without a server count the client tokenizer counts after the
                // level; until then content events stand in, so the live rate
                // is not zero for servers like Triton.
                let tokens = if r.output_tokens > 0 {
                    r.output_tokens
                } else {
                    r.content_events
                };
                s.output_tokens += u64::from(tokens);
                if let Some(t) = r.ttft_ms {
                    s.ttft_us.saturating_record((t * 1e3).max(1.0) as u64);
                }
                for g in &r.itl_ms {
                    s.itl_us.saturating_record((g * 1e3).max(1.0) as u64);
                }
            } else {
                s.failed += 1;
            }
        });
    }

    pub fn request_abandoned(&self) {
        self.with(|s| s.in_flight = s.in_flight.saturating_sub(1));
    }

    pub fn snapshot(&self) -> Snapshot {
        self.with(|s| {
            let q = |h: &Histogram<u64>, p: f64| {
                (!h.is_empty()).then(|| h.value_at_quantile(p) as f64 / 1e3)
            };
            Snapshot {
                level: s.level.clone(),
                elapsed_s: s.start.elapsed().as_secs_f64(),
                sent: s.sent,
                completed: s.completed,
                failed: s.failed,
                in_flight: s.in_flight,
                output_tokens: s.output_tokens,
                ttft_p50_ms: q(&s.ttft_us, 0.5),
                ttft_p99_ms: q(&s.ttft_us, 0.99),
                itl_p99_ms: q(&s.itl_us, 0.99),
            }
        })
    }
}
