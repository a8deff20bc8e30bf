//! A level's summary: vLLM's figures plus goodput, attainment and errors.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::{ErrorClass, RequestRecord};
use super::slo::Objective;
use super::stats::Distribution;
use super::workload::WorkloadCheck;

/// How many messages of each error class are kept.
pub const ERROR_SAMPLES: usize = 5;

/// Errors of one class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorCount {
    pub count: u64,
    /// The first distinct messages seen, causes before collateral losses.
    pub first_messages: Vec<String>,
    /// Of `count`, requests lost to another request's plugin failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub collateral: u64,
}

impl ErrorCount {
    /// Add another count of the same class (another shard's): counts add, and its first
    /// messages join these up to the usual number.
    pub fn absorb(&mut self, other: &ErrorCount) {
        self.count += other.count;
        self.collateral += other.collateral;
        for m in &other.first_messages {
            if self.first_messages.len() < ERROR_SAMPLES && !self.first_messages.contains(m) {
                self.first_messages.push(m.clone());
            }
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Server usage counts against the client tokenizer's count of the same text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenCountCheck {
    pub requests_compared: u64,
    /// Mean of |server − client| / server.
    pub mean_relative_diff: f64,
    pub max_abs_diff: u64,
    /// Requests whose counts differ by more than [`TokenCountCheck::WARN_RELATIVE_DIFF`] and
    /// by more than one token (absent in results written before it was counted).
    #[serde(default)]
    pub requests_off: u64,
}

impl TokenCountCheck {
    /// A request whose two counts differ by more than this share of the server's disagrees.
    pub const WARN_RELATIVE_DIFF: f64 = 0.10;
    /// More than this share of disagreeing requests is worth a warning, even when the mean
    /// hides them (a few requests far off among many exact ones).
    pub const WARN_SHARE_OFF: f64 = 0.05;

    /// Share of compared requests whose counts disagree.
    pub fn share_off(&self) -> f64 {
        if self.requests_compared == 0 {
            0.0
        } else {
            self.requests_off as f64 / self.requests_compared as f64
        }
    }

    pub fn disagrees(&self) -> bool {
        self.mean_relative_diff > Self::WARN_RELATIVE_DIFF
            || self.share_off() > Self::WARN_SHARE_OFF
    }
}

/// What the connection layer did over a level's measured requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionCounts {
    /// Connections opened.
    pub opened: u64,
    /// Requests sent on a connection an earlier request used.
    pub reused: u64,
    /// Requests sent again on a fresh connection after a reused one closed unanswered (the
    /// server never saw the first try; llama.cpp closes after every streamed response).
    pub retries: u64,
    /// Idle connections dropped before reuse: closed by the server, or idle too long.
    pub stale: u64,
    /// TCP connects timed (one per request that opened a connection) and their total, µs.
    #[serde(default)]
    pub connects_timed: u64,
    #[serde(default)]
    pub connect_us_total: u64,
    /// TLS handshakes (`https://`), their total and longest, µs.
    #[serde(default)]
    pub tls_handshakes: u64,
    #[serde(default)]
    pub tls_handshake_us_total: u64,
    #[serde(default)]
    pub tls_handshake_us_max: u64,
}

impl ConnectionCounts {
    /// Add another's counts (another shard's).
    pub fn absorb(&mut self, o: &ConnectionCounts) {
        self.opened += o.opened;
        self.reused += o.reused;
        self.retries += o.retries;
        self.stale += o.stale;
        self.connects_timed += o.connects_timed;
        self.connect_us_total += o.connect_us_total;
        self.tls_handshakes += o.tls_handshakes;
        self.tls_handshake_us_total += o.tls_handshake_us_total;
        self.tls_handshake_us_max = self.tls_handshake_us_max.max(o.tls_handshake_us_max);
    }

    /// Mean TCP connect and TLS handshake, ms, where any was timed.
    pub fn mean_connect_ms(&self) -> Option<f64> {
        (self.connects_timed > 0)
            .then(|| self.connect_us_total as f64 / self.connects_timed as f64 / 1e3)
    }

    pub fn mean_tls_handshake_ms(&self) -> Option<f64> {
        (self.tls_handshakes > 0)
            .then(|| self.tls_handshake_us_total as f64 / self.tls_handshakes as f64 / 1e3)
    }
}

/// SLO results of a level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Goodput {
    pub objectives: Vec<Objective>,
    /// Requests that succeeded and met every objective.
    pub good: u64,
    /// Good requests per second of the level's duration (vLLM's goodput).
    pub goodput_rps: f64,
    /// Good requests as a share of all requests sent, failures included, in %.
    pub attainment_pct: f64,
    /// Requests that missed each objective (a request can miss several).
    pub violations: BTreeMap<String, u64>,
}

/// Per-request SLO verdicts, aligned with the level's measured requests.
#[derive(Debug, Clone)]
pub struct Judged {
    pub objectives: Vec<Objective>,
    pub good: Vec<bool>,
    pub reasons: Vec<Vec<String>>,
}

/// The summary of one level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LevelSummary {
    /// Measured requests (warm-up excluded), successes and failures.
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    /// First measured send to last measured completion.
    pub duration_s: f64,
    pub request_throughput: f64,
    pub output_throughput: f64,
    pub total_token_throughput: f64,
    /// Prompt tokens of completed requests: the server's counts where it gave them.
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
    /// Most requests in flight at once.
    pub peak_concurrency: u64,
    /// Most output tokens that arrived within one second, counted in the second each token
    /// arrived, seconds counted from the first successful send (vLLM's
    /// `max_output_tokens_per_s`).
    pub peak_output_tokens_per_s: f64,
    #[serde(with = "crate::metrics::stats::unmeasured_as_null")]
    #[schemars(with = "Option<Distribution>")]
    pub ttft_ms: Distribution,
    #[serde(with = "crate::metrics::stats::unmeasured_as_null")]
    #[schemars(with = "Option<Distribution>")]
    pub tpot_ms: Distribution,
    #[serde(with = "crate::metrics::stats::unmeasured_as_null")]
    #[schemars(with = "Option<Distribution>")]
    pub itl_ms: Distribution,
    #[serde(with = "crate::metrics::stats::unmeasured_as_null")]
    #[schemars(with = "Option<Distribution>")]
    pub e2el_ms: Distribution,
    pub queue_ms: Distribution,
    pub errors: BTreeMap<ErrorClass, ErrorCount>,
    pub token_count_check: Option<TokenCountCheck>,
    pub goodput: Option<Goodput>,
    /// Connections opened, reused and retried (absent in results written before 0.2).
    #[serde(default)]
    pub connections: ConnectionCounts,
    /// Tokens asked for against tokens the server counted (absent when no response carried
    /// usage, and in results written before 0.2).
    #[serde(default)]
    pub workload: Option<WorkloadCheck>,
}

impl LevelSummary {
    /// Summarise the measured (non-warm-up) records of a level.
    pub fn compute(records: &[RequestRecord], judged: Option<&Judged>) -> LevelSummary {
        let measured: Vec<&RequestRecord> = records.iter().filter(|r| !r.warmup).collect();
        let ok: Vec<&RequestRecord> = measured.iter().copied().filter(|r| r.succeeded()).collect();
        let mut s = LevelSummary {
            requests: measured.len() as u64,
            completed: ok.len() as u64,
            failed: (measured.len() - ok.len()) as u64,
            ..Default::default()
        };
        let start = measured
            .iter()
            .map(|r| r.send_s)
            .fold(f64::INFINITY, f64::min);
        let end = measured
            .iter()
            .map(|r| r.send_s + r.latency_ms / 1e3)
            .fold(f64::NEG_INFINITY, f64::max);
        s.duration_s = if measured.is_empty() {
            0.0
        } else {
            (end - start).max(0.0)
        };

        s.total_input_tokens = ok.iter().map(|r| u64::from(r.counted_input_tokens())).sum();
        s.total_output_tokens = ok.iter().map(|r| u64::from(r.output_tokens)).sum();
        if s.duration_s > 0.0 {
            s.request_throughput = s.completed as f64 / s.duration_s;
            s.output_throughput = s.total_output_tokens as f64 / s.duration_s;
            s.total_token_throughput =
                (s.total_input_tokens + s.total_output_tokens) as f64 / s.duration_s;
        }
        s.peak_concurrency = peak_concurrency(&measured);
        s.peak_output_tokens_per_s = peak_tokens_per_second(&ok);

        let dist = |f: &dyn Fn(&RequestRecord) -> Option<f64>| {
            let mut v: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
            Distribution::from_values(&mut v)
        };
        s.ttft_ms = dist(&|r| r.ttft_ms);
        s.tpot_ms = dist(&RequestRecord::tpot_ms);
        s.e2el_ms = dist(&|r| r.e2el_ms);
        s.queue_ms = {
            let mut v: Vec<f64> = measured.iter().map(|r| r.queue_ms).collect();
            Distribution::from_values(&mut v)
        };
        s.itl_ms = {
            let mut v: Vec<f64> = ok.iter().flat_map(|r| r.itl_ms.iter().copied()).collect();
            Distribution::from_values(&mut v)
        };

        // Causes first: a request lost with an instance another stream's failure destroyed
        // says nothing of why, and would otherwise often be the first message shown.
        let errors = measured.iter().filter_map(|r| r.error.as_ref());
        for e in errors
            .clone()
            .filter(|e| !e.collateral)
            .chain(errors.filter(|e| e.collateral))
        {
            let entry = s.errors.entry(e.class).or_default();
            entry.count += 1;
            entry.collateral += u64::from(e.collateral);
            if entry.first_messages.len() < ERROR_SAMPLES
                && !entry.first_messages.contains(&e.message)
            {
                entry.first_messages.push(e.message.clone());
            }
        }
        for r in &measured {
            let c = &r.connection;
            s.connections.opened += u64::from(c.opened);
            s.connections.reused += u64::from(c.reused);
            s.connections.retries += u64::from(c.retries);
            s.connections.stale += u64::from(c.stale);
            if let Some(us) = c.connect_us {
                s.connections.connects_timed += 1;
                s.connections.connect_us_total += us;
            }
            if let Some(us) = c.tls_handshake_us {
                s.connections.tls_handshakes += 1;
                s.connections.tls_handshake_us_total += us;
                s.connections.tls_handshake_us_max = s.connections.tls_handshake_us_max.max(us);
            }
        }
        s.token_count_check = token_count_check(&ok);
        s.workload = WorkloadCheck::of(&ok);
        if let Some(j) = judged {
            s.goodput = Some(goodput(&measured, j, s.duration_s));
        }
        s
    }
}

fn peak_concurrency(records: &[&RequestRecord]) -> u64 {
    let mut edges: Vec<(f64, i64)> = Vec::with_capacity(records.len() * 2);
    for r in records {
        edges.push((r.send_s, 1));
        edges.push((r.send_s + r.latency_ms / 1e3, -1));
    }
    // Ends sort before starts at the same instant: back-to-back is not overlap.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut cur, mut peak) = (0i64, 0i64);
    for (_, d) in edges {
        cur += d;
        peak = peak.max(cur);
    }
    peak as u64
}

/// Tokens are put in the second they arrived, as vLLM does: the first at send + TTFT, each
/// later event one ITL gap on. An event that carried several tokens counts its share of the
/// request's tokens, so the totals stay the request's count.
fn peak_tokens_per_second(ok: &[&RequestRecord]) -> f64 {
    let origin = ok.iter().map(|r| r.send_s).fold(f64::INFINITY, f64::min);
    let mut per_second: BTreeMap<i64, f64> = BTreeMap::new();
    for r in ok {
        let Some(ttft) = r.ttft_ms else {
            continue;
        };
        let events = r.itl_ms.len() + 1;
        let per_event = f64::from(r.output_tokens) / events as f64;
        let mut at = r.send_s + ttft / 1e3;
        for gap in std::iter::once(&0.0).chain(&r.itl_ms) {
            at += gap / 1e3;
            *per_second.entry((at - origin).floor() as i64).or_default() += per_event;
        }
    }
    per_second.values().copied().fold(0.0, f64::max)
}

fn token_count_check(ok: &[&RequestRecord]) -> Option<TokenCountCheck> {
    let pairs: Vec<(u32, u32)> = ok
        .iter()
        .filter_map(|r| Some((r.output_tokens_server?, r.output_tokens_client?)))
        .filter(|(s, _)| *s > 0)
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mean = pairs
        .iter()
        .map(|&(s, c)| (f64::from(s) - f64::from(c)).abs() / f64::from(s))
        .sum::<f64>()
        / pairs.len() as f64;
    let max = pairs
        .iter()
        .map(|&(s, c)| u64::from(s.abs_diff(c)))
        .max()
        .unwrap_or(0);
    let off = pairs
        .iter()
        .filter(|&&(s, c)| {
            // One token either way is where re-encoding decoded text may merge or split a
            // token at a boundary: on a 4-token output that alone is 25 %.
            s.abs_diff(c) > 1
                && f64::from(s.abs_diff(c)) / f64::from(s) > TokenCountCheck::WARN_RELATIVE_DIFF
        })
        .count();
    Some(TokenCountCheck {
        requests_compared: pairs.len() as u64,
        mean_relative_diff: mean,
        max_abs_diff: max,
        requests_off: off as u64,
    })
}

fn goodput(measured: &[&RequestRecord], j: &Judged, duration_s: f64) -> Goodput {
    let good = j.good.iter().filter(|g| **g).count() as u64;
    let mut violations: BTreeMap<String, u64> = BTreeMap::new();
    for o in &j.objectives {
        violations.insert(o.metric.name().to_string(), 0);
    }
    for reasons in &j.reasons {
        for o in &j.objectives {
            if reasons.iter().any(|r| r.starts_with(o.metric.name())) {
                *violations.entry(o.metric.name().to_string()).or_default() += 1;
            }
        }
    }
    Goodput {
        objectives: j.objectives.clone(),
        good,
        goodput_rps: if duration_s > 0.0 {
            good as f64 / duration_s
        } else {
            0.0
        },
        attainment_pct: if measured.is_empty() {
            0.0
        } else {
            100.0 * good as f64 / measured.len() as f64
        },
        violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::record::RequestError;

    fn ok(send_s: f64, ttft: f64, e2el: f64, tokens: u32) -> RequestRecord {
        RequestRecord {
            send_s,
            ttft_ms: Some(ttft),
            e2el_ms: Some(e2el),
            latency_ms: e2el,
            output_tokens: tokens,
            input_tokens: 10,
            itl_ms: vec![(e2el - ttft) / f64::from(tokens.max(2) - 1); tokens as usize - 1],
            ..Default::default()
        }
    }

    #[test]
    fn throughput_and_concurrency() {
        let recs = vec![
            ok(0.0, 50.0, 1000.0, 11),
            ok(0.5, 50.0, 1000.0, 11),
            ok(1.5, 50.0, 500.0, 11),
        ];
        let s = LevelSummary::compute(&recs, None);
        assert_eq!(s.requests, 3);
        assert!((s.duration_s - 2.0).abs() < 1e-12);
        assert!((s.request_throughput - 1.5).abs() < 1e-12);
        assert!((s.output_throughput - 33.0 / 2.0).abs() < 1e-12);
        assert!((s.total_token_throughput - 63.0 / 2.0).abs() < 1e-12);
        assert_eq!(s.peak_concurrency, 2);
        assert!((s.tpot_ms.mean - (950.0 / 10.0 * 2.0 + 45.0) / 3.0).abs() < 1e-9);
    }

    #[test]
    fn warmup_excluded_and_failures_counted() {
        let mut w = ok(0.0, 1.0, 2.0, 3);
        w.warmup = true;
        let mut f = ok(1.0, 10.0, 20.0, 3);
        f.error = Some(RequestError {
            class: ErrorClass::HttpStatus,
            message: "HTTP 500".into(),
            collateral: false,
        });
        let s = LevelSummary::compute(&[w, ok(1.0, 50.0, 100.0, 3), f], None);
        assert_eq!((s.requests, s.completed, s.failed), (2, 1, 1));
        assert_eq!(s.ttft_ms.count, 1);
        assert_eq!(s.ttft_ms.p50, 50.0);
        assert_eq!(s.errors[&ErrorClass::HttpStatus].count, 1);
    }

    #[test]
    fn the_cause_of_a_plugin_failure_is_named_before_its_collateral_losses() {
        let failed = |message: &str, collateral: bool| {
            let mut r = ok(0.0, 1.0, 2.0, 3);
            r.error = Some(RequestError {
                class: ErrorClass::Plugin,
                message: message.into(),
                collateral,
            });
            r
        };
        let lost = "evil.wasm: the instance holding this stream parser was replaced after a trap";
        let cause = "evil.wasm ran past its 1s deadline in feed";
        let s = LevelSummary::compute(
            &[failed(lost, true), failed(lost, true), failed(cause, false)],
            None,
        );
        let e = &s.errors[&ErrorClass::Plugin];
        assert_eq!((e.count, e.collateral), (3, 2));
        assert_eq!(e.first_messages, [cause, lost]);
    }

    #[test]
    fn peak_output_counts_tokens_in_the_second_they_arrived() {
        // Two requests of 11 tokens: first token at 0.05 s, then one every 99 ms to 1.04 s.
        // By completion second all 22 would land in second 1; by arrival, second 0 holds
        // the first 10 of each (0.05 .. 0.941 s) and second 1 the last one of each.
        let recs = vec![ok(0.0, 50.0, 1040.0, 11), ok(0.0, 50.0, 1040.0, 11)];
        let s = LevelSummary::compute(&recs, None);
        assert!(
            (s.peak_output_tokens_per_s - 20.0).abs() < 1e-9,
            "{}",
            s.peak_output_tokens_per_s
        );
        // Seconds count from the first send, not from the level's start.
        let late = vec![ok(5.5, 50.0, 1040.0, 11)];
        let s = LevelSummary::compute(&late, None);
        assert!((s.peak_output_tokens_per_s - 10.0).abs() < 1e-9);
    }

    #[test]
    fn token_counts_warn_on_the_share_of_requests_off_not_only_the_mean() {
        let mut recs: Vec<RequestRecord> = (0..20).map(|_| ok(0.0, 1.0, 2.0, 32)).collect();
        for r in &mut recs {
            r.output_tokens_server = Some(32);
            r.output_tokens_client = Some(32);
        }
        // Two of twenty (10 %) off by half: the mean is 5 %, under the 10 % mean threshold.
        recs[0].output_tokens_client = Some(16);
        recs[1].output_tokens_client = Some(16);
        let c = LevelSummary::compute(&recs, None)
            .token_count_check
            .unwrap();
        assert_eq!((c.requests_compared, c.requests_off), (20, 2));
        assert!(c.mean_relative_diff < TokenCountCheck::WARN_RELATIVE_DIFF);
        assert!(c.disagrees());
        recs[1].output_tokens_client = Some(32);
        let c = LevelSummary::compute(&recs, None)
            .token_count_check
            .unwrap();
        assert!(!c.disagrees(), "one request in twenty is 5 %, not above it");
    }

    #[test]
    fn connection_use_is_summed_over_measured_requests() {
        let mut recs = vec![
            ok(0.0, 1.0, 2.0, 3),
            ok(0.0, 1.0, 2.0, 3),
            ok(0.0, 1.0, 2.0, 3),
        ];
        recs[0].connection.opened = 1;
        recs[0].connection.connect_us = Some(300);
        recs[0].connection.tls_handshake_us = Some(4_000);
        recs[1].connection = crate::metrics::ConnectionUse {
            reused: true,
            opened: 1,
            retries: 1,
            stale: 1,
            connect_us: Some(100),
            tls_handshake_us: Some(2_000),
        };
        recs[2].connection.reused = true;
        recs[2].warmup = true;
        let c = LevelSummary::compute(&recs, None).connections;
        assert_eq!(
            c,
            ConnectionCounts {
                opened: 2,
                reused: 1,
                retries: 1,
                stale: 1,
                connects_timed: 2,
                connect_us_total: 400,
                tls_handshakes: 2,
                tls_handshake_us_total: 6_000,
                tls_handshake_us_max: 4_000,
            }
        );
        assert_eq!(c.mean_connect_ms(), Some(0.2));
        assert_eq!(c.mean_tls_handshake_ms(), Some(3.0));
    }

    #[test]
    fn attainment_counts_failures_as_not_good() {
        let recs = vec![ok(0.0, 1.0, 2.0, 3), ok(0.0, 1.0, 2.0, 3)];
        let j = Judged {
            objectives: vec![],
            good: vec![true, false],
            reasons: vec![vec![], vec!["ttft 900 ms > 500 ms".into()]],
        };
        let s = LevelSummary::compute(&recs, Some(&j));
        let g = s.goodput.unwrap();
        assert_eq!(g.good, 1);
        assert_eq!(g.attainment_pct, 50.0);
    }
}
