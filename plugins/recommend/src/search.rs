//! The capacity search as a pure function of the probes so far: which concurrency to measure
//! next, with how many requests, or where the boundary is.
//!
//! C* is the largest concurrency whose SLO attainment (failures count as not good) is at least
//! the target. A probe's attainment is a sample, so each is judged with a Wilson score
//! interval: it passes when the whole interval is at or above the target, fails when the
//! whole interval is below, and is repeated (its requests pooled with the earlier ones) while
//! the interval straddles the target, up to a cap after which its point estimate decides.
//! The search doubles from concurrency 1 until a probe fails, then bisects between the
//! largest pass and the smallest fail above it until they are adjacent or within
//! [`SearchConfig::tolerance`] of each other. It reads no clock and no network, so the same
//! decisions are checked here natively against any attainment curve and run unchanged inside
//! the component.

use std::collections::BTreeMap;

use llm_loadtest_sdk::recommend::{Goal, Outcome, ProbeResult, Step};

/// How the search decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// Attainment to reach, as a share (0.95).
    pub target: f64,
    /// The largest concurrency the search may try.
    pub max_concurrency: u32,
    /// Measured requests of a first probe at concurrency c: `max(min_requests, 2·c)`.
    pub min_requests: u64,
    /// Pooled requests after which an uncertain probe is decided by its point estimate.
    pub max_requests: u64,
    /// The bracket is tight enough when `hi − lo ≤ max(1, tolerance · lo)`.
    pub tolerance: f64,
    /// Normal quantile of the two-sided interval (1.96: 95 % confidence).
    pub z: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            target: 0.95,
            max_concurrency: 4096,
            min_requests: 60,
            max_requests: 960,
            tolerance: 0.02,
            z: 1.96,
        }
    }
}

/// The settings `--policy-option` may change, with what each means.
pub const OPTIONS: [(&str, &str); 4] = [
    (
        "min-requests",
        "measured requests of a first probe, at least (default 60)",
    ),
    (
        "max-requests",
        "pooled requests after which the point estimate decides (default 960)",
    ),
    (
        "tolerance",
        "bracket width, as a share of C*, that ends the search (default 0.02)",
    ),
    (
        "z",
        "normal quantile of the Wilson interval (default 1.96: 95 % confidence)",
    ),
];

impl TryFrom<&Goal> for SearchConfig {
    type Error = String;

    fn try_from(goal: &Goal) -> Result<Self, String> {
        if !(goal.target > 0.0 && goal.target < 1.0) {
            return Err(format!(
                "the attainment target must be a share above 0 and below 1, got {}",
                goal.target
            ));
        }
        let mut cfg = SearchConfig {
            target: goal.target,
            max_concurrency: goal.max_concurrency.max(1),
            ..SearchConfig::default()
        };
        for (key, value) in &goal.options {
            let bad = |why: &str| format!("policy option {key}={value}: {why}");
            let number = || value.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let count = || value.trim().parse::<u64>().ok().filter(|v| *v > 0);
            match key.as_str() {
                "min-requests" => {
                    cfg.min_requests = count().ok_or_else(|| bad("a whole number above 0"))?;
                }
                "max-requests" => {
                    cfg.max_requests = count().ok_or_else(|| bad("a whole number above 0"))?;
                }
                "tolerance" => {
                    cfg.tolerance = number()
                        .filter(|t| (0.0..1.0).contains(t))
                        .ok_or_else(|| bad("a share from 0 up to (not including) 1"))?;
                }
                "z" => {
                    cfg.z = number()
                        .filter(|z| *z > 0.0 && *z <= 10.0)
                        .ok_or_else(|| bad("a number above 0 and at most 10"))?;
                }
                _ => {
                    let known: Vec<&str> = OPTIONS.iter().map(|(k, _)| *k).collect();
                    return Err(format!(
                        "unknown policy option {key:?}; the default policy knows {}",
                        known.join(", ")
                    ));
                }
            }
        }
        if cfg.min_requests > cfg.max_requests {
            return Err(format!(
                "policy options: min-requests ({}) is above max-requests ({})",
                cfg.min_requests, cfg.max_requests
            ));
        }
        Ok(cfg)
    }
}

/// How a concurrency's pooled probes compare with the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// The interval straddles the target: measure more.
    Unsure,
}

/// The Wilson score interval of `good` in `n` at quantile `z`.
pub fn wilson(good: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = good as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Probes pooled per concurrency: (requests, good).
pub fn pooled(probes: &[ProbeResult]) -> BTreeMap<u32, (u64, u64)> {
    let mut by_c: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for p in probes {
        let e = by_c.entry(p.concurrency).or_default();
        e.0 += p.requests;
        e.1 += p.good;
    }
    by_c
}

/// The verdict on `good` of `requests` at this configuration.
pub fn verdict(cfg: &SearchConfig, requests: u64, good: u64) -> Verdict {
    let (low, high) = wilson(good, requests, cfg.z);
    if low >= cfg.target {
        Verdict::Pass
    } else if high < cfg.target {
        Verdict::Fail
    } else if requests >= cfg.max_requests {
        // As sure as the budget allows: the point estimate decides.
        if good as f64 >= cfg.target * requests as f64 {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    } else {
        Verdict::Unsure
    }
}

/// Requests a first probe at `concurrency` takes: enough that a probe in which every request
/// is good can pass (the Wilson bound of n good in n reaches the target only from
/// `n > z²·t/(1−t)`: a first probe takes 74 at 95 %, 382 at 99 %), twice the concurrency so every client
/// completes a couple of requests, and at least `min_requests`; never above `max_requests`.
pub fn first_requests(cfg: &SearchConfig, concurrency: u32) -> u64 {
    let t = cfg.target.clamp(0.0, 0.999_999);
    let can_pass = (cfg.z * cfg.z * t / (1.0 - t)).ceil() as u64 + 1;
    cfg.min_requests
        .max(can_pass)
        .max(2 * u64::from(concurrency))
        .min(cfg.max_requests)
}

fn first_probe(cfg: &SearchConfig, concurrency: u32) -> Step {
    Step::Probe {
        concurrency,
        requests: first_requests(cfg, concurrency),
    }
}

/// The next move after `probes`.
pub fn next(cfg: &SearchConfig, probes: &[ProbeResult]) -> Step {
    let by_c = pooled(probes);
    let mut lo: Option<u32> = None;
    let mut fails: Vec<u32> = Vec::new();
    for (&c, &(n, good)) in &by_c {
        match verdict(cfg, n, good) {
            // More of the same probe: as many requests again as it has.
            Verdict::Unsure => {
                return Step::Probe {
                    concurrency: c,
                    requests: n.min(cfg.max_requests - n).max(1),
                };
            }
            Verdict::Pass => lo = Some(lo.map_or(c, |l| l.max(c))),
            Verdict::Fail => fails.push(c),
        }
    }
    let hi = fails
        .iter()
        .copied()
        .filter(|&f| lo.is_none_or(|l| f > l))
        .min();
    match (lo, hi) {
        (None, None) => first_probe(cfg, 1),
        (None, Some(1)) => Step::Done(Outcome::None),
        (None, Some(h)) => first_probe(cfg, (h / 2).max(1)),
        (Some(l), None) if l >= cfg.max_concurrency => Step::Done(Outcome::AtLeast(l)),
        (Some(l), None) => first_probe(cfg, l.saturating_mul(2).min(cfg.max_concurrency)),
        (Some(l), Some(h)) => {
            let slack = (cfg.tolerance * f64::from(l)).floor().max(1.0) as u32;
            if h - l <= slack {
                Step::Done(Outcome::Found { lo: l, hi: h })
            } else {
                first_probe(cfg, l + (h - l) / 2)
            }
        }
    }
}

/// The best answer the probes so far give, bracket tight or not (a search cut short by its
/// time budget); `None` before any probe is decided.
pub fn current(cfg: &SearchConfig, probes: &[ProbeResult]) -> Option<Outcome> {
    let decided: Vec<(u32, Verdict)> = pooled(probes)
        .into_iter()
        .map(|(c, (n, good))| {
            let v = match verdict(cfg, n, good) {
                // Cut short: the point estimate decides.
                Verdict::Unsure if good as f64 >= cfg.target * n as f64 => Verdict::Pass,
                Verdict::Unsure => Verdict::Fail,
                v => v,
            };
            (c, v)
        })
        .collect();
    let lo = decided
        .iter()
        .filter(|(_, v)| *v == Verdict::Pass)
        .map(|(c, _)| *c)
        .max();
    let hi = decided
        .iter()
        .filter(|(c, v)| *v == Verdict::Fail && lo.is_none_or(|l| *c > l))
        .map(|(c, _)| *c)
        .min();
    match (lo, hi) {
        (Some(lo), Some(hi)) => Some(Outcome::Found { lo, hi }),
        (Some(lo), None) => Some(Outcome::AtLeast(lo)),
        (None, Some(1)) => Some(Outcome::None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against an attainment curve, sampling good requests exactly at its
    /// expected share (no noise), and returns the outcome with the probes made.
    fn search(cfg: &SearchConfig, curve: impl Fn(u32) -> f64) -> (Outcome, Vec<ProbeResult>) {
        let mut probes = Vec::new();
        for _ in 0..200 {
            match next(cfg, &probes) {
                Step::Done(o) => return (o, probes),
                Step::Probe {
                    concurrency,
                    requests,
                } => probes.push(ProbeResult {
                    concurrency,
                    requests,
                    good: (curve(concurrency) * requests as f64).round() as u64,
                    ..ProbeResult::default()
                }),
            }
        }
        panic!("the search did not end: {probes:?}");
    }

    /// Attainment 1 up to `cap`, then falling fast.
    fn cliff(cap: u32) -> impl Fn(u32) -> f64 {
        move |c| if c <= cap { 1.0 } else { 0.5 }
    }

    #[test]
    fn finds_the_boundary_of_a_cliff_within_tolerance() {
        let cfg = SearchConfig::default();
        for cap in [1, 2, 3, 7, 37, 241, 1000] {
            let (outcome, probes) = search(&cfg, cliff(cap));
            let Outcome::Found { lo, hi } = outcome else {
                panic!("cap {cap}: {outcome:?}");
            };
            assert!(lo <= cap && cap < hi, "cap {cap}: {lo}..{hi}");
            let slack = ((0.02 * f64::from(lo)).floor() as u32).max(1);
            assert!(hi - lo <= slack, "cap {cap}: {lo}..{hi}");
            assert!(probes.len() <= 30, "cap {cap}: {} probes", probes.len());
        }
    }

    #[test]
    fn none_and_at_least() {
        let cfg = SearchConfig {
            max_concurrency: 64,
            ..SearchConfig::default()
        };
        assert_eq!(search(&cfg, |_| 0.5).0, Outcome::None);
        assert_eq!(search(&cfg, |_| 1.0).0, Outcome::AtLeast(64));
    }

    #[test]
    fn a_probe_near_the_target_is_repeated_until_sure_or_capped() {
        let cfg = SearchConfig::default();
        // 96 % against a 95 % target: not distinguishable from 74 requests.
        assert_eq!(first_requests(&cfg, 1), 74);
        assert_eq!(verdict(&cfg, 74, 71), Verdict::Unsure);
        let step = next(
            &cfg,
            &[ProbeResult {
                concurrency: 1,
                requests: 74,
                good: 71,
                ..ProbeResult::default()
            }],
        );
        assert_eq!(
            step,
            Step::Probe {
                concurrency: 1,
                requests: 74
            }
        );
        // Every request good passes at once.
        assert_eq!(verdict(&cfg, 74, 74), Verdict::Pass);
        let strict = SearchConfig {
            target: 0.99,
            ..cfg
        };
        assert_eq!(first_requests(&strict, 1), 382);
        // At the cap the point estimate decides.
        assert_eq!(verdict(&cfg, 960, 922), Verdict::Pass);
        assert_eq!(verdict(&cfg, 960, 911), Verdict::Fail);
        // A curve right at the target everywhere up to 10 still ends.
        let (outcome, _) = search(&cfg, |c| if c <= 10 { 0.96 } else { 0.2 });
        assert!(
            matches!(outcome, Outcome::Found { lo: 10, hi: 11 }),
            "{outcome:?}"
        );
    }

    #[test]
    fn wilson_bounds() {
        let (l, h) = wilson(95, 100, 1.96);
        assert!(
            (l - 0.888).abs() < 0.005 && (h - 0.978).abs() < 0.005,
            "{l} {h}"
        );
        assert_eq!(wilson(0, 0, 1.96), (0.0, 1.0));
        let (l, h) = wilson(100, 100, 1.96);
        assert!(l > 0.96 && h > 0.999_999, "{l} {h}");
    }
}
