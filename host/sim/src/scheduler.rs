//! The continuous-batching model: one task drives decode steps for the whole batch, as a GPU
//! does, and each step releases one token to every running sequence.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::profile::BatchParams;
use crate::stats::Stats;

/// A sequence asking to be generated. Each token is announced on `tokens` with the instant
/// the model released it; a closed receiver (client gone) frees the sequence's slot.
pub(crate) struct Submit {
    /// When the request arrived: it may join only a step that starts after this.
    pub arrival: Instant,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub tokens: mpsc::UnboundedSender<Instant>,
}

struct Running {
    remaining: u32,
    kv: u64,
    tokens: mpsc::UnboundedSender<Instant>,
}

/// Runs until every [`Submit`] sender is dropped.
pub(crate) async fn run(
    params: BatchParams,
    mut submissions: mpsc::UnboundedReceiver<Submit>,
    clock: Clock,
    stats: Arc<Stats>,
) {
    let mut queue: VecDeque<Submit> = VecDeque::new();
    let mut running: Vec<Running> = Vec::with_capacity(params.max_batch as usize);
    let mut kv_used: u64 = 0;
    let mut step_start = Instant::now();
    loop {
        if running.is_empty() && queue.is_empty() {
            // Idle GPU: the next step starts when work arrives, not on the old schedule.
            match submissions.recv().await {
                Some(s) => {
                    step_start = s.arrival;
                    queue.push_back(s);
                }
                None => return,
            }
        }
        while let Ok(s) = submissions.try_recv() {
            queue.push_back(s);
        }

        let mut prefill_tokens: u64 = 0;
        while let Some(front) = queue.front() {
            if front.tokens.is_closed() {
                queue.pop_front();
                continue;
            }
            let need = u64::from(front.input_tokens) + u64::from(front.output_tokens);
            // A scheduler woken late keeps the model's schedule (no drift) but must not let a
            // request join a step that, in model time, began before the request arrived.
            if front.arrival > step_start
                || running.len() >= params.max_batch as usize
                || kv_used + need > params.kv_tokens
            {
                break;
            }
            if let Some(s) = queue.pop_front() {
                kv_used += need;
                prefill_tokens += u64::from(s.input_tokens);
                running.push(Running {
                    remaining: s.output_tokens,
                    kv: need,
                    tokens: s.tokens,
                });
            }
        }
        stats.queue_depth.store(queue.len() as u64, Relaxed);
        stats.running.store(running.len() as u64, Relaxed);
        stats.kv_tokens_used.store(kv_used, Relaxed);
        if running.is_empty() {
            // Idle, and the queue's head arrived after the step that would have admitted it
            // began: the next step starts when it arrived.
            if let Some(front) = queue.front() {
                step_start = step_start.max(front.arrival);
            }
            continue;
        }

        // Absolute deadlines: a late wake-up shortens the next sleep instead of shifting
        // every later step.
        let step_end = step_start + params.step_time(running.len() as u32, prefill_tokens);
        clock.sleep_until(step_end).await;
        let mut released = 0u64;
        running.retain_mut(|s| {
            if s.tokens.send(step_end).is_err() {
                kv_used -= s.kv;
                return false;
            }
            released += 1;
            s.remaining -= 1;
            if s.remaining == 0 {
                kv_used -= s.kv;
                return false;
            }
            true
        });
        stats.running.store(running.len() as u64, Relaxed);
        stats.kv_tokens_used.store(kv_used, Relaxed);
        stats.tokens_generated.fetch_add(released, Relaxed);
        stats.scheduler_steps.fetch_add(1, Relaxed);
        step_start = step_end;
    }
}
