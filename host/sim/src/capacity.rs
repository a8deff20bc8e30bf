//! The batching model's steady state in closed form, and the capacity it implies.
//!
//! Setting: N clients in a closed loop, each sending its next request as soon as the previous
//! answer ends, every request with `input_len` prompt tokens and `output_len` output tokens,
//! and the clients' phases spread evenly (the state a ramped start reaches; see
//! host/sim/README.md for a synchronised start). With `S = min(max_batch, ⌊kv_tokens /
//! (input_len + output_len)⌋)` slots, one request's cycle lasts, in decode steps,
//!
//! * `C = O` for N = 1 (the idle scheduler starts a step as soon as the request arrives);
//! * `C = max(O + 1, N·O / S)` for N ≥ 2: O steps in the batch, plus the step during which
//!   the request arrived (admission happens at step boundaries) or, when slots run out,
//!   the queueing that keeps every slot busy.
//!
//! The other N − 1 clients then occupy `(N − 1)·O / C` slots and start `(N − 1)/C` prefills
//! per step on average, so, with `a`, `b`, `c` the step base, per-sequence and per-input-token
//! prefill costs:
//!
//! * a step a request waits through lasts `a + b·others + c·I·prefills`,
//! * its own prefill step adds `b + c·I`,
//! * its decode steps last `a + b·(others + 1) + c·I·prefills` — the TPOT,
//! * TTFT = (C − O) waiting steps + its prefill step.
//!
//! Prefills land on whole steps, evenly spaced `C / N` steps apart; which of the others'
//! prefills fall into a request's waiting, prefill and decode steps is counted exactly for
//! that spacing (see `prefills_before`), and the quantile picks the luckier or unluckier
//! requests where the count differs between them.

use std::time::Duration;

use crate::SimError;
use crate::duration::parse_duration;
use crate::profile::BatchParams;

/// Fixed request lengths of a closed-loop workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Prompt tokens per request (the simulator's whitespace count).
    pub input_len: u32,
    /// Output tokens per request (as with `ignore_eos`).
    pub output_len: u32,
}

/// Per-request latency objectives; a request is good when it meets every one given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slo {
    /// Time to first token.
    pub ttft: Option<Duration>,
    /// Time per output token after the first.
    pub tpot: Option<Duration>,
    /// End-to-end latency.
    pub e2el: Option<Duration>,
}

impl std::str::FromStr for Slo {
    type Err = SimError;

    /// Parses `ttft:500ms,tpot:50ms,e2el:10s` (any subset, at least one).
    fn from_str(text: &str) -> Result<Self, SimError> {
        let bad = |reason: String| SimError::Slo {
            input: text.to_owned(),
            reason,
        };
        let mut slo = Slo::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once(':')
                .ok_or_else(|| bad(format!("`{part}` is not metric:duration")))?;
            let d = parse_duration(value).map_err(bad)?;
            let slot = match name.trim() {
                "ttft" => &mut slo.ttft,
                "tpot" => &mut slo.tpot,
                "e2el" => &mut slo.e2el,
                other => return Err(bad(format!("unknown metric `{other}` (ttft, tpot, e2el)"))),
            };
            if slot.replace(d).is_some() {
                return Err(bad(format!("`{name}` is given twice")));
            }
        }
        if slo == Slo::default() {
            return Err(bad("no objective given".into()));
        }
        Ok(slo)
    }
}

impl Slo {
    /// Whether a request of a model run meets every objective (times in model time: no clock
    /// is read).
    pub fn met_by(&self, r: &crate::closed_loop::ModelRequest) -> bool {
        self.ttft.is_none_or(|t| r.ttft() <= t)
            && match (self.tpot, r.tpot()) {
                (Some(limit), Some(t)) => t <= limit,
                _ => true,
            }
            && self.e2el.is_none_or(|t| r.last_token - r.arrival <= t)
    }

    /// Every threshold multiplied by `k`: the objectives of a server whose times are scaled by
    /// `k` ([`BatchParams::scaled`]).
    pub fn scaled(self, k: f64) -> Slo {
        Slo {
            ttft: self.ttft.map(|d| d.mul_f64(k)),
            tpot: self.tpot.map(|d| d.mul_f64(k)),
            e2el: self.e2el.map(|d| d.mul_f64(k)),
        }
    }
}

/// The model's steady state at one concurrency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Concurrent clients.
    pub concurrency: u32,
    /// TTFT at the quantile asked for.
    pub ttft: Duration,
    /// TPOT at the quantile asked for; `None` when output_len ≤ 1.
    pub tpot: Option<Duration>,
    /// TTFT + (output_len − 1)·TPOT.
    pub e2el: Duration,
    /// Mean decode-step time.
    pub step: Duration,
    /// Completed requests per second.
    pub requests_per_s: f64,
    /// Output tokens per second.
    pub output_tokens_per_s: f64,
    /// Mean requests arrived but not yet in the batch.
    pub queued: f64,
}

impl Prediction {
    /// Whether this steady state meets every objective of `slo`.
    pub fn meets(&self, slo: &Slo) -> bool {
        slo.ttft.is_none_or(|t| self.ttft <= t)
            && slo.tpot.is_none_or(|t| self.tpot.is_none_or(|p| p <= t))
            && slo.e2el.is_none_or(|t| self.e2el <= t)
    }
}

/// The answer of [`capacity`].
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    /// Largest concurrency whose requests meet the SLO; 0 when even one client does not.
    pub max_concurrency: u32,
    /// Sequences that fit at once (max batch or KV budget, whichever is smaller).
    pub slots: u32,
    /// Predictions at 1 and at powers of two, plus around `max_concurrency`, ascending.
    pub table: Vec<Prediction>,
}

/// Sequences that fit at once.
pub fn slots(params: &BatchParams, workload: Workload) -> u32 {
    let per_seq = u64::from(workload.input_len) + u64::from(workload.output_len);
    let by_kv = params.kv_tokens / per_seq.max(1);
    u32::try_from(by_kv.min(u64::from(params.max_batch))).unwrap_or(u32::MAX)
}

/// How many other clients' prefills fall within the `w` steps before a request's own
/// prefill step (`w` = 0: in that step, before it in admission order), when prefills are
/// spread evenly `spacing` steps apart, for the request at quantile `q`.
///
/// With even spacing the j-th earlier prefill lies ⌊j·s⌋ or ⌈j·s⌉ steps back, the latter for
/// a share frac(j·s) of requests; a request at quantile q counts the uncertain ones when
/// q > frac(j·s) (higher quantiles are the requests that see more prefills).
fn prefills_before(w: f64, spacing: f64, q: f64) -> f64 {
    let mut count = 0.0;
    let mut j = 1.0;
    loop {
        let back = j * spacing;
        if back.floor() > w + 1e-9 || j > 1e7 {
            return count;
        }
        if back.ceil() <= w + 1e-9 || q > back.fract() {
            count += 1.0;
        }
        j += 1.0;
    }
}

/// Predicts the steady state of `concurrency` closed-loop clients, at quantile `q` (0.5 for
/// the median, 0.95 for p95) of the per-request TTFT and TPOT. `None` when no request fits
/// in the KV budget, or concurrency is 0.
pub fn predict(
    params: &BatchParams,
    workload: Workload,
    concurrency: u32,
    q: f64,
) -> Option<Prediction> {
    let s = f64::from(slots(params, workload));
    if s == 0.0 || concurrency == 0 {
        return None;
    }
    let n = f64::from(concurrency);
    let o = f64::from(workload.output_len.max(1));
    let i = f64::from(workload.input_len);
    let (a, b, c) = (
        params.step_base_us,
        params.step_per_seq_us,
        params.prefill_us_per_token,
    );
    let cycle = if concurrency == 1 {
        o
    } else {
        (o + 1.0).max(n * o / s)
    };
    let waiting = cycle - o;
    let others = (n - 1.0) * o / cycle;
    let (in_ttft, in_decode) = if concurrency == 1 {
        (0.0, 0.0)
    } else {
        let spacing = cycle / n;
        let same_step = prefills_before(0.0, spacing, q);
        (
            // Waiting steps and the own prefill step (others admitted in that step, before
            // or after this one in the queue: the same count either side by symmetry).
            prefills_before(waiting, spacing, q) + same_step,
            prefills_before(o - 1.0, spacing, q) - same_step,
        )
    };

    let ttft_us = (waiting + 1.0) * (a + b * others) + b + c * i * (1.0 + in_ttft);
    let decode_steps = o - 1.0;
    let tpot_us = (decode_steps > 0.0)
        .then(|| a + b * (others + 1.0) + c * i * in_decode.max(0.0) / decode_steps);
    let e2el_us = ttft_us + decode_steps * tpot_us.unwrap_or(0.0);
    let step_us = a + b * n * o / cycle + c * i * n / cycle;
    // A client's cycle is its request's whole life (the next request follows at once).
    let requests_per_s = n / (e2el_us * 1e-6);
    let micros = |us: f64| Duration::from_secs_f64(us.max(0.0) * 1e-6);
    Some(Prediction {
        concurrency,
        ttft: micros(ttft_us),
        tpot: tpot_us.map(micros),
        e2el: micros(e2el_us),
        step: micros(step_us),
        requests_per_s,
        output_tokens_per_s: requests_per_s * o,
        queued: n * waiting / cycle,
    })
}

/// The largest concurrency at which requests meet `slo`, for a share `attainment` (0–1] of
/// requests (TTFT and TPOT are taken at that quantile).
pub fn capacity(params: &BatchParams, workload: Workload, slo: &Slo, attainment: f64) -> Capacity {
    let q = attainment.clamp(0.0, 1.0);
    let s = slots(params, workload);
    // Past saturation every extra client only queues, so TTFT grows without bound; the scan
    // stops at the first concurrency that fails (latency never falls as clients are added).
    let limit = s.saturating_mul(8).clamp(64, 1 << 20);
    let mut max_concurrency = 0;
    for n in 1..=limit {
        match predict(params, workload, n, q) {
            Some(p) if p.meets(slo) => max_concurrency = n,
            _ => break,
        }
    }
    let mut levels: Vec<u32> = std::iter::successors(Some(1u32), |n| n.checked_mul(2))
        .take_while(|n| *n <= limit.max(max_concurrency + 1))
        .collect();
    levels.extend([max_concurrency, max_concurrency + 1]);
    levels.retain(|n| *n >= 1);
    levels.sort_unstable();
    levels.dedup();
    let table = levels
        .into_iter()
        .filter_map(|n| predict(params, workload, n, q))
        .collect();
    Capacity {
        max_concurrency,
        slots: s,
        table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BatchParams {
        BatchParams {
            max_batch: 16,
            prefill_us_per_token: 10.0,
            step_base_us: 4_000.0,
            step_per_seq_us: 100.0,
            kv_tokens: 1_000_000,
        }
    }

    const W: Workload = Workload {
        input_len: 200,
        output_len: 12,
    };

    /// Scaling the server's times and the SLO alike keeps C* for every profile, workload and SLO
    /// the proof bench uses, at time scales from 0.1 to 2.
    #[test]
    fn scaling_times_and_slo_alike_keeps_c_star() {
        for profile in crate::PROFILES {
            for (input_len, output_len) in [(512, 128), (2048, 256)] {
                for slo in ["ttft:500ms,tpot:50ms", "ttft:2s,tpot:100ms", "e2el:10s"] {
                    let slo: Slo = slo.parse().unwrap();
                    let w = Workload {
                        input_len,
                        output_len,
                    };
                    let base = capacity(&profile.params, w, &slo, 0.95).max_concurrency;
                    for k in [0.1, 0.25, 0.5, 2.0] {
                        let scaled = capacity(&profile.params.scaled(k), w, &slo.scaled(k), 0.95)
                            .max_concurrency;
                        assert_eq!(
                            scaled, base,
                            "{} {input_len}/{output_len} {slo:?} at k={k}",
                            profile.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn one_client_is_one_prefill_then_bare_steps() {
        let p = predict(&params(), W, 1, 0.5).unwrap();
        assert_eq!(p.ttft, Duration::from_micros(4_000 + 100 + 2_000));
        assert_eq!(p.tpot, Some(Duration::from_micros(4_100)));
    }

    #[test]
    fn latency_rises_with_concurrency() {
        let mut last = predict(&params(), W, 1, 0.95).unwrap();
        for n in 2..100 {
            let p = predict(&params(), W, n, 0.95).unwrap();
            assert!(p.ttft >= last.ttft, "ttft falls at {n}");
            assert!(p.e2el >= last.e2el, "e2el falls at {n}");
            last = p;
        }
    }

    #[test]
    fn kv_budget_limits_slots_and_oversize_requests_fit_nowhere() {
        let mut p = params();
        p.kv_tokens = 212 * 3;
        assert_eq!(slots(&p, W), 3);
        p.kv_tokens = 100;
        assert!(predict(&p, W, 1, 0.5).is_none());
        let c = capacity(&p, W, &"ttft:1s".parse().unwrap(), 0.95);
        assert_eq!(c.max_concurrency, 0);
    }

    #[test]
    fn capacity_is_the_last_level_that_meets_the_slo() {
        let slo: Slo = "ttft:50ms,tpot:10ms".parse().unwrap();
        let c = capacity(&params(), W, &slo, 0.95);
        assert!(c.max_concurrency > 1);
        let at = predict(&params(), W, c.max_concurrency, 0.95).unwrap();
        let past = predict(&params(), W, c.max_concurrency + 1, 0.95).unwrap();
        assert!(at.meets(&slo) && !past.meets(&slo));
    }

    #[test]
    fn parses_slos() {
        let s: Slo = "ttft:500ms,tpot:50ms".parse().unwrap();
        assert_eq!(s.ttft, Some(Duration::from_millis(500)));
        assert_eq!(s.tpot, Some(Duration::from_millis(50)));
        assert!(s.e2el.is_none());
        assert!("ttft:5".parse::<Slo>().is_err());
        assert!("speed:5ms".parse::<Slo>().is_err());
        assert!("".parse::<Slo>().is_err());
        assert!("ttft:1ms,ttft:2ms".parse::<Slo>().is_err());
    }
}
