//! The continuous-batching model as a pure state machine over model time.
//!
//! Why a separate core: the server's scheduler task ([`crate::scheduler`]) sleeps on a real
//! clock, so anything checked through it (TTFT against the closed form, KV admission order)
//! is only as exact as the machine is idle. This core holds every decision — who is admitted
//! to which step, how long a step lasts, which token leaves when — and takes no clock at all:
//! times are offsets from the model's epoch, handed in by the caller. The server drives it with
//! `Instant`s; tests and [`crate::closed_loop`] drive it with virtual time, so the same
//! arithmetic is checked to the microsecond on any machine at any load.
//!
//! The step protocol is [`BatchModel::begin_step`] (admit, return the step's end), then
//! [`BatchModel::end_step`] (release one token to every running sequence at that end).

use std::collections::VecDeque;
use std::time::Duration;

use crate::profile::BatchParams;

/// A sequence waiting for a slot, with whatever the driver needs to reach its client.
struct Waiting<T> {
    arrival: Duration,
    input_tokens: u32,
    output_tokens: u32,
    tag: T,
}

struct Running<T> {
    remaining: u32,
    kv: u64,
    tag: T,
}

/// One token handed to a sequence's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Model time the token left: the end of the step that produced it.
    pub at: Duration,
    /// The sequence's last token: its slot and KV budget are free after this step.
    pub last: bool,
}

/// What one decode step did, for logs and for tests that check the model's arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRecord {
    /// Model time the step began.
    pub start: Duration,
    /// Model time the step ended (its tokens' time).
    pub end: Duration,
    /// Sequences in the step.
    pub batch: u32,
    /// Sequences admitted at this step's start (their prefill is in it).
    pub admitted: u32,
    /// Prompt tokens prefilled in this step.
    pub prefill_tokens: u64,
    /// Tokens delivered (sequences whose client was gone are not counted).
    pub released: u32,
}

/// A sequence can never fit: its prompt and output exceed the whole KV budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversize {
    /// Prompt plus output tokens asked for.
    pub need: u64,
    /// The model's KV budget.
    pub kv_tokens: u64,
}

/// The batching scheduler's state. `T` is the driver's handle to a sequence's client (a
/// channel in the server, an index in a virtual-time run).
pub struct BatchModel<T> {
    params: BatchParams,
    queue: VecDeque<Waiting<T>>,
    running: Vec<Running<T>>,
    kv_used: u64,
    step_start: Duration,
    /// Set by `begin_step`, taken by `end_step`.
    open_step: Option<StepRecord>,
}

impl<T> BatchModel<T> {
    /// An idle model whose first step can start at model time zero.
    pub fn new(params: BatchParams) -> Self {
        Self {
            params,
            queue: VecDeque::new(),
            running: Vec::with_capacity(params.max_batch as usize),
            kv_used: 0,
            step_start: Duration::ZERO,
            open_step: None,
        }
    }

    /// Nothing running and nothing waiting.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.queue.is_empty()
    }

    /// When the next step starts (or started): arrivals up to this instant may join it.
    pub fn step_start(&self) -> Duration {
        self.step_start
    }

    /// Sequences waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Sequences in the batch.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// KV tokens held by the running sequences (prompt plus full output, reserved on entry).
    pub fn kv_used(&self) -> u64 {
        self.kv_used
    }

    /// Queues a sequence that arrived at model time `arrival`. An idle GPU starts its next
    /// step when work arrives (never before the previous step ended), not on an old schedule.
    pub fn submit(
        &mut self,
        arrival: Duration,
        input_tokens: u32,
        output_tokens: u32,
        tag: T,
    ) -> Result<(), Oversize> {
        // Every sequence generates at least one token (as a server does with max_tokens 0).
        let output_tokens = output_tokens.max(1);
        let need = u64::from(input_tokens) + u64::from(output_tokens);
        if need > self.params.kv_tokens {
            return Err(Oversize {
                need,
                kv_tokens: self.params.kv_tokens,
            });
        }
        if self.is_idle() {
            self.step_start = self.step_start.max(arrival);
        }
        self.queue.push_back(Waiting {
            arrival,
            input_tokens,
            output_tokens,
            tag,
        });
        Ok(())
    }

    /// Admits, in arrival order, the waiting sequences that may join the step starting at
    /// [`Self::step_start`], and returns when that step ends; `None` when nothing is left to
    /// run (sequences whose client is `gone` are dropped from the queue).
    ///
    /// Admission stops at the first sequence that does not fit (FIFO, as vLLM's scheduler):
    /// one that arrived after the step began, or that finds no free slot or KV budget.
    pub fn begin_step(&mut self, gone: impl Fn(&T) -> bool) -> Option<Duration> {
        let (mut admitted, mut prefill_tokens) = self.admit(&gone);
        if self.running.is_empty() {
            // Idle, and the queue's head arrived after the step that would have admitted it
            // began: the next step starts when it arrived.
            let front = self.queue.front()?.arrival;
            self.step_start = self.step_start.max(front);
            (admitted, prefill_tokens) = self.admit(&gone);
            if self.running.is_empty() {
                return None;
            }
        }
        let batch = self.running.len() as u32;
        let end = self.step_start + self.params.step_time(batch, prefill_tokens);
        self.open_step = Some(StepRecord {
            start: self.step_start,
            end,
            batch,
            admitted,
            prefill_tokens,
            released: 0,
        });
        Some(end)
    }

    fn admit(&mut self, gone: &impl Fn(&T) -> bool) -> (u32, u64) {
        let (mut admitted, mut prefill_tokens) = (0u32, 0u64);
        while let Some(front) = self.queue.front() {
            if gone(&front.tag) {
                self.queue.pop_front();
                continue;
            }
            let need = u64::from(front.input_tokens) + u64::from(front.output_tokens);
            if front.arrival > self.step_start
                || self.running.len() >= self.params.max_batch as usize
                || self.kv_used + need > self.params.kv_tokens
            {
                break;
            }
            let Some(s) = self.queue.pop_front() else {
                break;
            };
            self.kv_used += need;
            prefill_tokens += u64::from(s.input_tokens);
            admitted += 1;
            self.running.push(Running {
                remaining: s.output_tokens,
                kv: need,
                tag: s.tag,
            });
        }
        (admitted, prefill_tokens)
    }

    /// Ends the step [`Self::begin_step`] opened: every running sequence gets one token at the
    /// step's end through `deliver`, which answers `false` when the client is gone (its slot
    /// is freed at once). The next step starts where this one ended, so a driver that wakes
    /// late keeps the model's schedule instead of drifting. `None` when no step was open.
    pub fn end_step(&mut self, mut deliver: impl FnMut(&T, Token) -> bool) -> Option<StepRecord> {
        let mut step = self.open_step.take()?;
        let mut released = 0u32;
        let mut kv_used = self.kv_used;
        self.running.retain_mut(|s| {
            let last = s.remaining == 1;
            if !deliver(&s.tag, Token { at: step.end, last }) {
                kv_used -= s.kv;
                return false;
            }
            released += 1;
            s.remaining -= 1;
            if last {
                kv_used -= s.kv;
                return false;
            }
            true
        });
        self.kv_used = kv_used;
        step.released = released;
        self.step_start = step.end;
        Some(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Runs every step until the model is idle; returns (tag, token) deliveries and the log.
    fn drain(model: &mut BatchModel<u32>) -> (Vec<(u32, Token)>, Vec<StepRecord>) {
        let (mut tokens, mut steps) = (Vec::new(), Vec::new());
        while model.begin_step(|_| false).is_some() {
            let step = model
                .end_step(|tag, t| {
                    tokens.push((*tag, t));
                    true
                })
                .unwrap();
            steps.push(step);
        }
        (tokens, steps)
    }

    const FLAT: BatchParams = BatchParams {
        max_batch: 64,
        prefill_us_per_token: 0.0,
        step_base_us: 2_000.0,
        step_per_seq_us: 0.0,
        kv_tokens: 30,
    };

    #[test]
    fn kv_budget_admits_the_second_sequence_only_after_the_first_ends() {
        let mut m = BatchModel::new(FLAT);
        // 10 prompt + 10 output tokens: one fits in 30 KV tokens, a second must wait.
        m.submit(Duration::ZERO, 10, 10, 0).unwrap();
        m.submit(Duration::ZERO, 10, 10, 1).unwrap();
        let (tokens, steps) = drain(&mut m);
        assert_eq!(steps.len(), 20);
        assert!(steps.iter().all(|s| s.batch == 1));
        let first_last = tokens.iter().rfind(|(t, _)| *t == 0).unwrap().1;
        let second_first = tokens.iter().find(|(t, _)| *t == 1).unwrap().1;
        assert!(first_last.last);
        assert_eq!(first_last.at, us(20_000));
        assert!(second_first.at > first_last.at);
        assert_eq!(second_first.at, us(22_000));
        assert_eq!((steps[10].start, steps[10].admitted), (us(20_000), 1));
        assert_eq!(m.kv_used(), 0);
        assert!(m.is_idle());
    }

    #[test]
    fn oversize_sequences_are_refused() {
        let mut m = BatchModel::new(FLAT);
        assert_eq!(
            m.submit(Duration::ZERO, 10, 25, 0),
            Err(Oversize {
                need: 35,
                kv_tokens: 30
            })
        );
        assert!(m.is_idle());
    }

    #[test]
    fn step_time_counts_the_batch_and_the_prefill_admitted_in_it() {
        let params = BatchParams {
            max_batch: 2,
            prefill_us_per_token: 10.0,
            step_base_us: 1_000.0,
            step_per_seq_us: 100.0,
            kv_tokens: 1_000,
        };
        let mut m = BatchModel::new(params);
        for tag in 0..3 {
            m.submit(Duration::ZERO, 50, 2, tag).unwrap();
        }
        let (tokens, steps) = drain(&mut m);
        // Two fit (max_batch 2): 1000 + 2·100 + 100·10 µs; then a bare step of two.
        assert_eq!((steps[0].batch, steps[0].admitted), (2, 2));
        assert_eq!(steps[0].end, us(2_200));
        assert_eq!(steps[1].end, us(2_200 + 1_200));
        // The third waits for a free slot, then prefills alone.
        assert_eq!((steps[2].batch, steps[2].prefill_tokens), (1, 50));
        assert_eq!(steps[2].end, us(3_400 + 1_000 + 100 + 500));
        assert_eq!(tokens.len(), 6);
        assert_eq!(m.waiting(), 0);
    }

    #[test]
    fn late_arrivals_wait_for_the_next_step_and_idle_gpus_start_on_arrival() {
        let mut m = BatchModel::new(FLAT);
        m.submit(us(500), 1, 3, 0).unwrap();
        assert_eq!(
            m.step_start(),
            us(500),
            "an idle GPU starts when work arrives"
        );
        assert_eq!(m.begin_step(|_| false), Some(us(2_500)));
        // Arrives during the first step: admitted at the next boundary, not back-dated.
        m.submit(us(600), 1, 1, 1).unwrap();
        let step = m.end_step(|_, _| true).unwrap();
        assert_eq!(step.batch, 1);
        assert_eq!(m.begin_step(|_| false), Some(us(4_500)));
        let mut got = Vec::new();
        let step = m
            .end_step(|tag, t| {
                got.push((*tag, t));
                true
            })
            .unwrap();
        assert_eq!((step.batch, step.admitted), (2, 1));
        assert_eq!(
            got[1],
            (
                1,
                Token {
                    at: us(4_500),
                    last: true
                }
            )
        );
    }

    #[test]
    fn a_gone_client_frees_its_slot_and_budget() {
        let mut m = BatchModel::new(FLAT);
        m.submit(Duration::ZERO, 10, 10, 0).unwrap();
        m.submit(Duration::ZERO, 10, 10, 1).unwrap();
        m.begin_step(|_| false).unwrap();
        // Client 0 hangs up: its token is not delivered and client 1 is admitted next step.
        let step = m.end_step(|tag, _| *tag != 0).unwrap();
        assert_eq!(step.released, 0);
        assert_eq!(m.kv_used(), 0);
        m.begin_step(|_| false).unwrap();
        assert_eq!(m.running(), 1);
        // A queued client that is gone is skipped at admission.
        let mut m = BatchModel::new(FLAT);
        m.submit(Duration::ZERO, 1, 1, 7).unwrap();
        assert_eq!(m.begin_step(|tag| *tag == 7), None);
        assert!(m.is_idle());
    }
}
