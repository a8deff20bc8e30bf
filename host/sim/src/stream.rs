//! A streamed answer: when each token is released, and the body that carries it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::app::App;
use crate::clock::Clock;
use crate::faults::{Fault, FaultKind};
use crate::generation::Plan;
use crate::protocol::{Done, Wire};
use crate::stats::Stats;

/// The end of a body cut short on purpose; hyper then aborts the connection mid-message.
#[derive(Debug, thiserror::Error)]
#[error("simulated fault: the connection is dropped mid-response")]
pub(crate) struct Aborted;

/// When the tokens of one sequence are released.
pub(crate) enum Ticker {
    /// Token i leaves at arrival + ttft + i·itl, on this stream's own schedule.
    Fixed {
        arrival: Instant,
        ttft: Duration,
        itl: Duration,
    },
    /// The batch scheduler announces each token with the step's end instant.
    Batch(mpsc::UnboundedReceiver<Instant>),
}

impl Ticker {
    /// Waits for token `i`; gives the instant the model scheduled it, or `None` when the
    /// scheduler has gone away.
    pub(crate) async fn token(&mut self, i: u32, clock: &Clock, stats: &Stats) -> Option<Instant> {
        match self {
            Ticker::Fixed { arrival, ttft, itl } => {
                let at = *arrival + *ttft + *itl * i;
                clock.sleep_until(at).await;
                stats.tokens_generated.fetch_add(1, Relaxed);
                Some(at)
            }
            Ticker::Batch(rx) => rx.recv().await,
        }
    }

    /// Waits for all `n` tokens; gives the first one's scheduled instant, or `None` when the
    /// scheduler has gone away.
    pub(crate) async fn wait_all(
        &mut self,
        n: u32,
        clock: &Clock,
        stats: &Stats,
    ) -> Option<Instant> {
        match self {
            Ticker::Fixed { arrival, ttft, itl } => {
                let first = *arrival + *ttft;
                clock.sleep_until(first + *itl * n.saturating_sub(1)).await;
                stats.tokens_generated.fetch_add(u64::from(n), Relaxed);
                Some(first)
            }
            Ticker::Batch(rx) => {
                let first = rx.recv().await?;
                for _ in 1..n {
                    rx.recv().await?;
                }
                Some(first)
            }
        }
    }
}

/// Counts a response body in flight for as long as it lives.
pub(crate) struct ActiveGuard {
    stats: Arc<Stats>,
}

impl ActiveGuard {
    pub(crate) fn new(stats: &Arc<Stats>) -> Self {
        stats.active_streams.fetch_add(1, Relaxed);
        Self {
            stats: Arc::clone(stats),
        }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.stats.active_streams.fetch_sub(1, Relaxed);
    }
}

pub(crate) enum Stage {
    Tokens,
    Trailer,
    Finished,
}

/// Produces a streamed body frame by frame, inside the connection's own task: no task or
/// channel per stream in fixed mode.
pub(crate) struct Driver<W> {
    pub app: App,
    pub wire: W,
    pub ticker: Ticker,
    pub plan: Plan,
    pub prompt_tokens: u32,
    pub arrival: Instant,
    pub first_token: Option<Instant>,
    /// When the last token was handed to the connection, for the server's own ITL.
    pub last_sent: Option<Instant>,
    pub sent: u32,
    pub stage: Stage,
    /// Held for its `Drop`: counts the stream as active while the body lives.
    /// Released when the stream ends, before its last frame goes out, so a client that has
    /// read the whole answer never sees the stream still counted; dropping it covers a client
    /// that left early.
    pub active: Option<ActiveGuard>,
}

impl<W: Wire> Driver<W> {
    pub(crate) async fn next_frame(&mut self) -> Option<Result<Bytes, Aborted>> {
        loop {
            match self.stage {
                Stage::Finished => return None,
                Stage::Trailer => {
                    self.stage = Stage::Finished;
                    self.active = None;
                    let done = Done {
                        prompt_tokens: self.prompt_tokens,
                        completion_tokens: self.plan.output_tokens,
                        finish: self.plan.finish,
                        arrival: self.arrival,
                        first_token: self.first_token.unwrap_or(self.arrival),
                        end: Instant::now(),
                    };
                    let mut out = Vec::with_capacity(256);
                    self.wire.end(&mut out, &done);
                    self.app.stats.requests_completed.fetch_add(1, Relaxed);
                    self.app.count_finish(self.plan.finish);
                    if out.is_empty() {
                        return None;
                    }
                    return Some(Ok(self.frame(out)));
                }
                Stage::Tokens => {
                    if let Some(f) = self.plan.fault.filter(|f| f.after_tokens == self.sent) {
                        self.plan.fault = None;
                        if let Some(frame) = self.strike(f).await {
                            return Some(frame);
                        }
                    }
                    if self.sent == self.plan.output_tokens {
                        self.stage = Stage::Trailer;
                        continue;
                    }
                    let i = self.sent;
                    let Some(scheduled) =
                        self.ticker.token(i, &self.app.clock, &self.app.stats).await
                    else {
                        self.stage = Stage::Finished;
                        return Some(Err(Aborted));
                    };
                    let mut out = Vec::with_capacity(if i == 0 { 512 } else { 256 });
                    let last = i + 1 == self.plan.output_tokens;
                    self.wire.token(
                        &mut out,
                        self.plan.text.word(i),
                        i,
                        last.then_some(self.plan.finish),
                    );
                    self.sent += 1;
                    let now = Instant::now();
                    let late = now.saturating_duration_since(scheduled);
                    self.app.stats.token_lateness.record(late);
                    match self.last_sent {
                        None => {
                            self.first_token = Some(scheduled);
                            self.app.stats.first_token_lateness.record(late);
                            self.app.stats.ttft.record(now - self.arrival);
                        }
                        Some(prev) => self.app.stats.itl.record(now - prev),
                    }
                    self.last_sent = Some(now);
                    return Some(Ok(self.frame(out)));
                }
            }
        }
    }

    /// Applies a fault; `Some` is the frame (or abort) to hand out now, `None` carries on.
    async fn strike(&mut self, f: Fault) -> Option<Result<Bytes, Aborted>> {
        let mut out = Vec::with_capacity(256);
        match f.kind {
            FaultKind::Http500 => return None,
            FaultKind::ErrorAfter200 => {
                self.stage = Stage::Finished;
                self.wire
                    .stream_error(&mut out, "simulated error after 200");
            }
            FaultKind::MalformedChunk => self.wire.malformed(&mut out),
            FaultKind::DropMidStream => {
                // Cut while the next token is being made, so the tokens already handed to
                // hyper reach the socket first (an error polled right after a frame would
                // discard that frame along with the connection).
                if self.sent < self.plan.output_tokens {
                    let _ = self
                        .ticker
                        .token(self.sent, &self.app.clock, &self.app.stats)
                        .await;
                } else {
                    self.app.clock.sleep(Duration::from_millis(1)).await;
                }
                // A deadline already past returns at once; give hyper one turn to flush.
                tokio::task::yield_now().await;
                self.stage = Stage::Finished;
                self.app.count_fault(f.kind);
                return Some(Err(Aborted));
            }
            FaultKind::Stall => {
                self.app.count_fault(f.kind);
                self.app.clock.sleep(self.app.config.stall).await;
                self.stage = Stage::Finished;
                return Some(Err(Aborted));
            }
        }
        self.app.count_fault(f.kind);
        Some(Ok(self.frame(out)))
    }

    fn frame(&self, out: Vec<u8>) -> Bytes {
        self.app.stats.body_frames.fetch_add(1, Relaxed);
        self.app
            .stats
            .body_bytes
            .fetch_add(out.len() as u64, Relaxed);
        Bytes::from(out)
    }
}
