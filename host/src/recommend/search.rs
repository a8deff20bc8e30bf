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
//! [`SearchConfig::tolerance`] of each other. Because this reads no clock and no network, the
//! same decisions can be checked here against any attainment curve, and later run inside a
//! policy component unchanged.

use std::collections::BTreeMap;

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

/// What one probe measured: requests sent (after warm-up) and how many were good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub concurrency: u32,
    pub requests: u64,
    pub good: u64,
}

/// How a concurrency's pooled probes compare with the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// The interval straddles the target: measure more.
    Unsure,
}

/// The search's next move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Measure this concurrency with this many requests.
    Probe { concurrency: u32, requests: u64 },
    /// The search is over.
    Done(Outcome),
}

/// Where the boundary lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// C* = `lo`: it passes and `hi` (the smallest failing concurrency above it) does not.
    Found { lo: u32, hi: u32 },
    /// Even concurrency 1 misses the target.
    None,
    /// The largest concurrency allowed passes: C* is at least that.
    AtLeast(u32),
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
pub fn pooled(probes: &[Probe]) -> BTreeMap<u32, (u64, u64)> {
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
pub fn next(cfg: &SearchConfig, probes: &[Probe]) -> Step {
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
pub fn current(cfg: &SearchConfig, probes: &[Probe]) -> Option<Outcome> {
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
    fn search(cfg: &SearchConfig, curve: impl Fn(u32) -> f64) -> (Outcome, Vec<Probe>) {
        let mut probes = Vec::new();
        for _ in 0..200 {
            match next(cfg, &probes) {
                Step::Done(o) => return (o, probes),
                Step::Probe {
                    concurrency,
                    requests,
                } => probes.push(Probe {
                    concurrency,
                    requests,
                    good: (curve(concurrency) * requests as f64).round() as u64,
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
            &[Probe {
                concurrency: 1,
                requests: 74,
                good: 71,
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
