//! Live counters of the simulator, readable at any time through [`crate::SimHandle::stats`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::faults::FaultKind;

/// Lateness histogram resolution and range: 10 µs buckets up to 20 ms, then one overflow bucket.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 2_000;

/// How late the simulator released tokens against its own schedule.
pub(crate) struct Lateness {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Lateness {
    fn new() -> Self {
        Self {
            buckets: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, late: Duration) {
        let ns = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
        let bucket = ((ns / 1_000 / BUCKET_US) as usize).min(BUCKETS);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
    }

    fn summary(&self) -> LatenessSummary {
        let count = self.count.load(Relaxed);
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let quantile = |q: f64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            let rank = ((q * count as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    if i == BUCKETS {
                        return Duration::from_nanos(self.max_ns.load(Relaxed));
                    }
                    return Duration::from_micros((i as u64 + 1) * BUCKET_US);
                }
            }
            Duration::from_nanos(self.max_ns.load(Relaxed))
        };
        LatenessSummary {
            count,
            mean: Duration::from_nanos(self.sum_ns.load(Relaxed).checked_div(count).unwrap_or(0)),
            p50: quantile(0.50),
            p99: quantile(0.99),
            max: Duration::from_nanos(self.max_ns.load(Relaxed)),
        }
    }
}

/// Distribution of token release lateness: the instant a token's bytes were handed to the HTTP
/// connection minus the instant the timing model scheduled it. Quantiles are upper bounds of
/// 10 µs buckets (exact maximum above 20 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatenessSummary {
    /// Tokens measured.
    pub count: u64,
    /// Mean lateness.
    pub mean: Duration,
    /// Median lateness (bucket upper bound).
    pub p50: Duration,
    /// 99th percentile (bucket upper bound).
    pub p99: Duration,
    /// Largest lateness seen.
    pub max: Duration,
}

/// vLLM 0.32's bucket bounds (seconds) for `vllm:time_to_first_token_seconds`, read off its
/// `/metrics` (tests/fixtures/wire/vllm-tiny-metrics.txt).
pub(crate) const TTFT_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// … and for `vllm:inter_token_latency_seconds`.
pub(crate) const ITL_BOUNDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];

/// A Prometheus histogram with fixed bounds, as the server it imitates exposes one: what the
/// server itself measured (bytes handed to the connection minus the request's arrival), for
/// clients that compare their own view with the server's.
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; the last is `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self.bounds.partition_point(|&le| le < s);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    /// `(le, cumulative count)` for each bound then `+Inf` (as `f64::INFINITY`), and the sum in
    /// seconds.
    pub(crate) fn cumulative(&self) -> (Vec<(f64, u64)>, f64) {
        let mut seen = 0;
        let buckets = self
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter())
            .map(|(le, c)| {
                seen += c.load(Relaxed);
                (le, seen)
            })
            .collect();
        (buckets, self.sum_ns.load(Relaxed) as f64 / 1e9)
    }
}

/// Shared counters, updated with relaxed atomics (they are statistics, not synchronisation).
pub(crate) struct Stats {
    pub requests_received: AtomicU64,
    pub requests_completed: AtomicU64,
    pub requests_rejected: AtomicU64,
    pub finished_length: AtomicU64,
    pub finished_stop: AtomicU64,
    pub active_streams: AtomicU64,
    pub running: AtomicU64,
    pub queue_depth: AtomicU64,
    pub kv_tokens_used: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub tokens_generated: AtomicU64,
    pub faults_by_kind: [AtomicU64; 5],
    pub body_frames: AtomicU64,
    pub body_bytes: AtomicU64,
    pub scheduler_steps: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_peak: AtomicU64,
    pub connections_idle_closed: AtomicU64,
    pub tokenize_requests: AtomicU64,
    pub first_token_lateness: Lateness,
    pub token_lateness: Lateness,
    pub ttft: Histogram,
    pub itl: Histogram,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            requests_received: AtomicU64::new(0),
            requests_completed: AtomicU64::new(0),
            requests_rejected: AtomicU64::new(0),
            finished_length: AtomicU64::new(0),
            finished_stop: AtomicU64::new(0),
            active_streams: AtomicU64::new(0),
            running: AtomicU64::new(0),
            queue_depth: AtomicU64::new(0),
            kv_tokens_used: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            tokens_generated: AtomicU64::new(0),
            faults_by_kind: Default::default(),
            body_frames: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            scheduler_steps: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_peak: AtomicU64::new(0),
            connections_idle_closed: AtomicU64::new(0),
            tokenize_requests: AtomicU64::new(0),
            first_token_lateness: Lateness::new(),
            token_lateness: Lateness::new(),
            ttft: Histogram::new(TTFT_BOUNDS),
            itl: Histogram::new(ITL_BOUNDS),
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let faults_by_kind =
            FaultKind::ALL.map(|k| (k, self.faults_by_kind[k.index()].load(Relaxed)));
        StatsSnapshot {
            requests_received: self.requests_received.load(Relaxed),
            requests_completed: self.requests_completed.load(Relaxed),
            requests_rejected: self.requests_rejected.load(Relaxed),
            active_streams: self.active_streams.load(Relaxed),
            running: self.running.load(Relaxed),
            queue_depth: self.queue_depth.load(Relaxed),
            kv_tokens_used: self.kv_tokens_used.load(Relaxed),
            prompt_tokens: self.prompt_tokens.load(Relaxed),
            tokens_generated: self.tokens_generated.load(Relaxed),
            faults_injected: faults_by_kind.iter().map(|(_, n)| n).sum(),
            faults_by_kind,
            body_frames: self.body_frames.load(Relaxed),
            body_bytes: self.body_bytes.load(Relaxed),
            scheduler_steps: self.scheduler_steps.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_open: self.connections_open.load(Relaxed),
            connections_peak: self.connections_peak.load(Relaxed),
            connections_idle_closed: self.connections_idle_closed.load(Relaxed),
            tokenize_requests: self.tokenize_requests.load(Relaxed),
            timer_wakeups: 0,
            first_token_lateness: self.first_token_lateness.summary(),
            token_lateness: self.token_lateness.summary(),
        }
    }
}

/// A point-in-time copy of the simulator's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Generation requests that reached a handler (bad JSON included).
    pub requests_received: u64,
    /// Requests answered in full (last token and end of stream sent).
    pub requests_completed: u64,
    /// Requests refused with a 4xx (bad JSON, over the KV budget).
    pub requests_rejected: u64,
    /// Response bodies in flight (streaming or waiting to answer).
    pub active_streams: u64,
    /// Sequences in the batch (batching model; 0 in fixed mode).
    pub running: u64,
    /// Requests waiting for admission (batching model; 0 in fixed mode).
    pub queue_depth: u64,
    /// KV-cache tokens reserved by running sequences (batching model).
    pub kv_tokens_used: u64,
    /// Prompt tokens counted, by the whitespace rule.
    pub prompt_tokens: u64,
    /// Output tokens released by the timing model.
    pub tokens_generated: u64,
    /// Faults injected, all kinds.
    pub faults_injected: u64,
    /// Faults injected per kind.
    pub faults_by_kind: [(FaultKind, u64); 5],
    /// Body frames handed to the HTTP connections (one per event, the CPU's unit of work).
    pub body_frames: u64,
    /// Body bytes handed to the HTTP connections.
    pub body_bytes: u64,
    /// Decode steps run by the batch scheduler.
    pub scheduler_steps: u64,
    /// TCP connections accepted since start.
    pub connections_accepted: u64,
    /// TCP connections open now.
    pub connections_open: u64,
    /// Most TCP connections open at once.
    pub connections_peak: u64,
    /// Connections closed by the keep-alive idle timeout.
    pub connections_idle_closed: u64,
    /// `POST /tokenize` requests answered (never counted as generation requests).
    pub tokenize_requests: u64,
    /// Times the clock thread woke up to release due timers.
    pub timer_wakeups: u64,
    /// Lateness of first tokens against the schedule.
    pub first_token_lateness: LatenessSummary,
    /// Lateness of every token against the schedule.
    pub token_lateness: LatenessSummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let l = Lateness::new();
        for us in [5, 15, 25, 35, 45_000] {
            l.record(Duration::from_micros(us));
        }
        let s = l.summary();
        assert_eq!(s.count, 5);
        assert_eq!(s.p50, Duration::from_micros(30));
        assert_eq!(s.max, Duration::from_micros(45_000));
        assert_eq!(s.p99, Duration::from_micros(45_000));
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_prometheus_bounds() {
        let h = Histogram::new(&[0.01, 0.1]);
        for ms in [10, 50, 60, 500] {
            h.record(Duration::from_millis(ms));
        }
        let (buckets, sum) = h.cumulative();
        // `le` is inclusive: 10 ms falls in the 0.01 bucket.
        assert_eq!(buckets, vec![(0.01, 1), (0.1, 3), (f64::INFINITY, 4)]);
        assert!((sum - 0.62).abs() < 1e-9);
    }
}
