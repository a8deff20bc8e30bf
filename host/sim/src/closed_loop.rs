//! Closed-loop clients against the batching model in virtual time: what the server would
//! measure with no clock at all.
//!
//! This is the check of [`crate::predict`] that holds on any machine: the same [`BatchModel`]
//! the server runs, driven event by event with the arrivals a closed loop makes, so TTFT and
//! TPOT come out to the microsecond whatever else the CPU is doing. The server adds only the
//! real clock's lateness on top, which the benchmarks measure.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::batch_model::{BatchModel, StepRecord};
use crate::capacity::Workload;
use crate::profile::BatchParams;

/// Shape of a virtual closed-loop run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedLoop {
    /// Concurrent clients.
    pub clients: u32,
    /// Requests each client sends, one after another.
    pub rounds: u32,
    /// Client k sends its first request at `k / clients · stagger` (evenly spread phases, as
    /// a ramp-up leaves them); zero starts every client at once.
    pub stagger: Duration,
    /// From a client's last token to its next request's arrival: the network round trip and
    /// the client's own work. A real client always takes some, so its next request misses the
    /// step that starts as the previous one ends; zero would let it join that step.
    pub client_gap: Duration,
}

/// One request's life in model time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelRequest {
    /// The client that sent it.
    pub client: u32,
    /// Its place in that client's sequence (0 first).
    pub round: u32,
    /// When it reached the server.
    pub arrival: Duration,
    /// When its first token left.
    pub first_token: Duration,
    /// When its last token left.
    pub last_token: Duration,
    /// Tokens it received.
    pub tokens: u32,
}

impl ModelRequest {
    /// Time to first token.
    pub fn ttft(&self) -> Duration {
        self.first_token - self.arrival
    }

    /// Time per output token after the first; `None` for a single token.
    pub fn tpot(&self) -> Option<Duration> {
        (self.tokens > 1).then(|| (self.last_token - self.first_token) / (self.tokens - 1))
    }
}

/// Every request of the run, in the order they completed, and every step the model took.
#[derive(Debug, Clone, Default)]
pub struct ModelRun {
    /// Completed requests.
    pub requests: Vec<ModelRequest>,
    /// The scheduler's step log.
    pub steps: Vec<StepRecord>,
}

/// Runs `shape` against a fresh model with `params`, every request `workload`-sized, until
/// every client has had all its answers. Deterministic: the same inputs give the same run.
/// `None` when a request cannot fit in the KV budget at all.
pub fn closed_loop(params: BatchParams, workload: Workload, shape: ClosedLoop) -> Option<ModelRun> {
    let mut model: BatchModel<usize> = BatchModel::new(params);
    let mut run = ModelRun::default();
    let mut open: Vec<InFlight> = Vec::new();
    // Next arrivals, earliest first; ties go to the lower client, as their phases order them.
    let mut arrivals: BinaryHeap<Reverse<(Duration, u32, u32)>> = (0..shape.clients)
        .filter(|_| shape.rounds > 0)
        .map(|k| {
            let phase = shape
                .stagger
                .mul_f64(f64::from(k) / f64::from(shape.clients));
            Reverse((phase, k, 0))
        })
        .collect();
    let submit = |model: &mut BatchModel<usize>,
                  open: &mut Vec<InFlight>,
                  (arrival, client, round): (Duration, u32, u32)| {
        open.push(InFlight {
            client,
            round,
            arrival,
            first_token: None,
            tokens: 0,
        });
        model
            .submit(
                arrival,
                workload.input_len,
                workload.output_len,
                open.len() - 1,
            )
            .ok()
    };
    loop {
        if model.is_idle() {
            let Some(Reverse(next)) = arrivals.pop() else {
                return Some(run);
            };
            submit(&mut model, &mut open, next)?;
        }
        // The server drains every request that arrived while the last step ran.
        while let Some(Reverse(next)) = arrivals.peek().copied() {
            if next.0 > model.step_start() {
                break;
            }
            arrivals.pop();
            submit(&mut model, &mut open, next)?;
        }
        if model.begin_step(|_| false).is_none() {
            continue;
        }
        let mut delivered = Vec::new();
        let step = model.end_step(|&tag, token| {
            delivered.push((tag, token));
            true
        })?;
        run.steps.push(step);
        for (tag, token) in delivered {
            let r = &mut open[tag];
            let first_token = *r.first_token.get_or_insert(token.at);
            r.tokens += 1;
            if token.last {
                run.requests.push(ModelRequest {
                    client: r.client,
                    round: r.round,
                    arrival: r.arrival,
                    first_token,
                    last_token: token.at,
                    tokens: r.tokens,
                });
                if r.round + 1 < shape.rounds {
                    arrivals.push(Reverse((
                        token.at + shape.client_gap,
                        r.client,
                        r.round + 1,
                    )));
                }
            }
        }
    }
}

/// A request between its arrival and its last token.
struct InFlight {
    client: u32,
    round: u32,
    arrival: Duration,
    first_token: Option<Duration>,
    tokens: u32,
}
