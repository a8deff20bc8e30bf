//! The batching model on the real clock: one task drives decode steps for the whole batch, as
//! a GPU does, and each step releases one token to every running sequence. Every decision is
//! [`BatchModel`]'s; this task only turns `Instant`s into model time and sleeps.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::batch_model::BatchModel;
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

/// Runs until every [`Submit`] sender is dropped.
pub(crate) async fn run(
    params: BatchParams,
    mut submissions: mpsc::UnboundedReceiver<Submit>,
    clock: Clock,
    stats: Arc<Stats>,
) {
    let epoch = Instant::now();
    let mut model: BatchModel<mpsc::UnboundedSender<Instant>> = BatchModel::new(params);
    let submit = |model: &mut BatchModel<_>, s: Submit| {
        // The request handler refuses what can never fit (HTTP 400) before submitting, so a
        // refusal here only drops a sequence nobody could serve; its client sees the stream end.
        let _ = model.submit(
            s.arrival.saturating_duration_since(epoch),
            s.input_tokens,
            s.output_tokens,
            s.tokens,
        );
    };
    loop {
        if model.is_idle() {
            match submissions.recv().await {
                Some(s) => submit(&mut model, s),
                None => return,
            }
        }
        while let Ok(s) = submissions.try_recv() {
            submit(&mut model, s);
        }
        let step_end = model.begin_step(mpsc::UnboundedSender::is_closed);
        publish(&stats, &model);
        let Some(step_end) = step_end else {
            continue;
        };
        // Absolute deadlines: a late wake-up shortens the next sleep instead of shifting
        // every later step.
        let at = epoch + step_end;
        // Requests arriving during the step queue at once (they join the next step), so
        // `/metrics` counts them as waiting while the step runs, as a real server does.
        let step = clock.sleep_until(at);
        tokio::pin!(step);
        loop {
            tokio::select! {
                biased;
                () = &mut step => break,
                arrived = submissions.recv() => match arrived {
                    Some(s) => {
                        submit(&mut model, s);
                        publish(&stats, &model);
                    }
                    None => {
                        (&mut step).await;
                        break;
                    }
                },
            }
        }
        if let Some(step) = model.end_step(|tokens, _| tokens.send(at).is_ok()) {
            stats
                .tokens_generated
                .fetch_add(u64::from(step.released), Relaxed);
            stats.scheduler_steps.fetch_add(1, Relaxed);
        }
        publish(&stats, &model);
    }
}

fn publish<T>(stats: &Stats, model: &BatchModel<T>) {
    stats.queue_depth.store(model.waiting() as u64, Relaxed);
    stats.running.store(model.running() as u64, Relaxed);
    stats.kv_tokens_used.store(model.kv_used(), Relaxed);
}
