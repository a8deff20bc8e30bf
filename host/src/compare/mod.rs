//! Comparing stored runs level by level, and telling real differences from
//! noise.
//!
//! Two tests, both on per-request latencies of the two runs' matching
//! levels (TTFT, TPOT, E2EL; inter-token gaps are not independent samples,
//! so ITL gets no test):
//!
//! - A bootstrap confidence interval of the difference of a percentile
//!   (B − A) — p50 and p99. Each of [`RESAMPLES`] rounds resamples both runs
//!   with replacement and takes the difference of their percentiles; the
//!   interval is the central 95 % of those differences. When it covers 0
//!   the difference is "within noise". Samples come from the per-request
//!   records, or, for runs stored without them, from the level's
//!   HdrHistogram (values quantised to 0.1 %).
//! - The Mann–Whitney U test (two-sided, normal approximation with tie and
//!   continuity corrections), when both runs have records: is one run's
//!   latency stochastically larger? It is reported with P(B > A), the
//!   probability that a random request of B is slower than one of A.
//!
//! No statistics crate offers both with tie-corrected ranks, so they are
//! implemented here; the normal tail uses the Chebyshev fit of erfc from
//! Numerical Recipes (§6.2, fractional error below 1.2e-7).
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::metrics::histogram::LevelHistograms;
use crate::metrics::{Distribution, LevelSummary, RequestRecord};
use crate::result::LevelResult;
use crate::store::StoredRun;

pub mod workload;

/// Bootstrap rounds per interval.
pub const RESAMPLES: usize = 1000;
/// Confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;
/// Fewer samples than this in either run: no test is attempted.
pub const MIN_SAMPLES: usize = 8;
/// Fixed, so the same two runs always give the same intervals.
const SEED: u64 = 0x5eed_c0de;

/// A confidence interval of a difference (B − A).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    /// The difference on the full samples.
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn covers_zero(&self) -> bool {
        self.lo <= 0.0 && self.hi >= 0.0
    }
}

/// Linear-interpolated percentile (numpy's default, as `metrics::stats`)
/// of unsorted values, in linear time.
fn percentile_unsorted(v: &mut [f64], q: f64) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = (q / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let frac = rank - lo as f64;
    let (_, lo_v, right) = v.select_nth_unstable_by(lo, f64::total_cmp);
    let lo_v = *lo_v;
    if frac == 0.0 || right.is_empty() {
        return lo_v;
    }
    let hi_v = right.iter().copied().fold(f64::INFINITY, f64::min);
    lo_v + (hi_v - lo_v) * frac
}

/// Bootstrap interval of percentile `q` of `b` minus that of `a`.
pub fn bootstrap_percentile_diff(a: &[f64], b: &[f64], q: f64, seed: u64) -> Option<Interval> {
    if a.len() < MIN_SAMPLES || b.len() < MIN_SAMPLES {
        return None;
    }
    let estimate =
        percentile_unsorted(&mut b.to_vec(), q) - percentile_unsorted(&mut a.to_vec(), q);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ra, mut rb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    let mut diffs = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        for x in ra.iter_mut() {
            *x = a[rng.random_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.random_range(0..b.len())];
        }
        diffs.push(percentile_unsorted(&mut rb, q) - percentile_unsorted(&mut ra, q));
    }
    let tail = (1.0 - CONFIDENCE) / 2.0 * 100.0;
    Some(Interval {
        estimate,
        lo: percentile_unsorted(&mut diffs, tail),
        hi: percentile_unsorted(&mut diffs, 100.0 - tail),
    })
}

/// The Mann–Whitney U test of B against A.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MannWhitney {
    pub n_a: usize,
    pub n_b: usize,
    /// U of B: pairs (a, b) with b > a, ties counting one half.
    pub u: f64,
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
    /// U / (n_a n_b): P(B > A) + ½ P(B = A); 0.5 is no shift.
    pub prob_b_greater: f64,
}

impl MannWhitney {
    /// A difference at the 5 % level.
    pub fn significant(&self) -> bool {
        self.p_value < 1.0 - CONFIDENCE
    }
}

pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let (n_a, n_b) = (a.len(), b.len());
    if n_a < MIN_SAMPLES || n_b < MIN_SAMPLES {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&v| (v, false))
        .chain(b.iter().map(|&v| (v, true)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let (mut rank_sum_b, mut tie_term) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let avg = (i + 1 + j) as f64 / 2.0;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        rank_sum_b += avg * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (fa, fb, fn_) = (n_a as f64, n_b as f64, n as f64);
    let u = rank_sum_b - fb * (fb + 1.0) / 2.0;
    let mean = fa * fb / 2.0;
    let var = fa * fb / 12.0 * ((fn_ + 1.0) - tie_term / (fn_ * (fn_ - 1.0)));
    let (z, p_value) = if var > 0.0 {
        let d = u - mean;
        let corrected = d.signum() * (d.abs() - 0.5).max(0.0);
        let z = corrected / var.sqrt();
        (z, (2.0 * normal_sf(z.abs())).min(1.0))
    } else {
        // Every value equal: no evidence of any difference.
        (0.0, 1.0)
    };
    Some(MannWhitney {
        n_a,
        n_b,
        u,
        z,
        p_value,
        prob_b_greater: u / (fa * fb),
    })
}

/// Complementary error function (Numerical Recipes' `erfcc`).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// P(Z > z) for a standard normal Z.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// A per-request latency that can be tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    Ttft,
    Tpot,
    E2el,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::Ttft, Metric::Tpot, Metric::E2el];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Ttft => "TTFT",
            Metric::Tpot => "TPOT",
            Metric::E2el => "E2EL",
        }
    }

    fn of_record(self, r: &RequestRecord) -> Option<f64> {
        match self {
            Metric::Ttft => r.ttft_ms,
            Metric::Tpot => r.tpot_ms(),
            Metric::E2el => r.e2el_ms,
        }
    }

    fn distribution(self, s: &LevelSummary) -> &Distribution {
        match self {
            Metric::Ttft => &s.ttft_ms,
            Metric::Tpot => &s.tpot_ms,
            Metric::E2el => &s.e2el_ms,
        }
    }
}

/// Where a level's samples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SampleSource {
    Records,
    Histogram,
    None,
}

/// Per-request values of `metric` in a level (ms): measured successes from
/// the records, else expanded from the stored histogram.
pub fn samples(
    level: &LevelResult,
    records: &[RequestRecord],
    metric: Metric,
) -> (Vec<f64>, SampleSource) {
    let from_records: Vec<f64> = records
        .iter()
        .filter(|r| !r.warmup && r.succeeded())
        .filter_map(|r| metric.of_record(r))
        .collect();
    if !from_records.is_empty() {
        return (from_records, SampleSource::Records);
    }
    let Ok(h) = LevelHistograms::deserialize(&level.histograms) else {
        return (Vec::new(), SampleSource::None);
    };
    let h = match metric {
        Metric::Ttft => &h.ttft,
        Metric::Tpot => &h.tpot,
        Metric::E2el => &h.e2el,
    };
    let mut v = Vec::with_capacity(h.len() as usize);
    for it in h.iter_recorded() {
        let ms = h.median_equivalent(it.value_iterated_to()) as f64 / 1e3;
        v.extend(std::iter::repeat_n(ms, it.count_at_value() as usize));
    }
    let source = if v.is_empty() {
        SampleSource::None
    } else {
        SampleSource::Histogram
    };
    (v, source)
}

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Better {
    Lower,
    Higher,
}

/// One figure of a level across the runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub name: String,
    pub better: Better,
    /// Per run; None where the run lacks the level or the figure.
    pub values: Vec<Option<f64>>,
    /// Per run against the first (index 0 is always None).
    pub intervals: Vec<Option<Interval>>,
}

impl Row {
    /// Run `i` against the first, in % of the first.
    pub fn delta_pct(&self, i: usize) -> Option<f64> {
        let (a, b) = (
            self.values.first().copied()??,
            self.values.get(i).copied()??,
        );
        (a != 0.0).then(|| (b - a) / a * 100.0)
    }

    /// Plain words for run `i` against the first.
    pub fn verdict(&self, i: usize) -> String {
        let Some(iv) = self.intervals.get(i).copied().flatten() else {
            return String::new();
        };
        if iv.covers_zero() {
            return "within noise".to_string();
        }
        let up = iv.estimate > 0.0;
        match (self.better, up) {
            (Better::Lower, true) | (Better::Higher, false) => "worse".to_string(),
            _ => "better".to_string(),
        }
    }
}

/// A Mann–Whitney test of a metric, per run against the first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RankTest {
    pub metric: Metric,
    pub tests: Vec<Option<MannWhitney>>,
}

/// One level (matched by label) across the runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LevelComparison {
    pub label: String,
    pub rows: Vec<Row>,
    pub rank_tests: Vec<RankTest>,
    /// Per run: where the bootstrap samples came from.
    pub sources: Vec<SampleSource>,
}

/// Runs side by side; the first is the baseline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub ids: Vec<String>,
    pub levels: Vec<LevelComparison>,
    /// How the runs' workloads differ (settings, tokens per request); empty when they match.
    pub workload_differences: Vec<String>,
}

fn level_labels(runs: &[StoredRun]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for r in runs {
        for l in &r.entry.result.levels {
            if !labels.contains(&l.label) {
                labels.push(l.label.clone());
            }
        }
    }
    labels
}

/// Compare `runs` level by level against the first.
pub fn compare(runs: &[StoredRun]) -> Comparison {
    let mut levels = Vec::new();
    for label in level_labels(runs) {
        let found: Vec<Option<(&LevelResult, &[RequestRecord])>> = runs
            .iter()
            .map(|r| {
                let i = r
                    .entry
                    .result
                    .levels
                    .iter()
                    .position(|l| l.label == label)?;
                Some((&r.entry.result.levels[i], r.level_records(i)))
            })
            .collect();
        let figure = |f: &dyn Fn(&LevelResult) -> Option<f64>| -> Vec<Option<f64>> {
            found.iter().map(|x| x.and_then(|(l, _)| f(l))).collect()
        };
        let none = vec![None; runs.len()];
        let mut rows = vec![
            Row {
                name: "requests/s".into(),
                better: Better::Higher,
                values: figure(&|l| Some(l.summary.request_throughput)),
                intervals: none.clone(),
            },
            Row {
                name: "output tok/s".into(),
                better: Better::Higher,
                values: figure(&|l| Some(l.summary.output_throughput)),
                intervals: none.clone(),
            },
        ];
        let mut rank_tests = Vec::new();
        let mut sources = vec![SampleSource::None; runs.len()];
        for metric in Metric::ALL {
            let per_run: Vec<Option<(Vec<f64>, SampleSource)>> = found
                .iter()
                .map(|x| x.map(|(l, recs)| samples(l, recs, metric)))
                .collect();
            if metric == Metric::Ttft {
                for (s, p) in sources.iter_mut().zip(&per_run) {
                    *s = p.as_ref().map_or(SampleSource::None, |p| p.1);
                }
            }
            for (q, qname) in [(50.0, "p50"), (99.0, "p99")] {
                let mut intervals = vec![None; runs.len()];
                if let Some((base, _)) = &per_run[0] {
                    for (i, p) in per_run.iter().enumerate().skip(1) {
                        if let Some((v, _)) = p {
                            intervals[i] = bootstrap_percentile_diff(base, v, q, SEED ^ i as u64);
                        }
                    }
                }
                rows.push(Row {
                    name: format!("{} {qname} ms", metric.name()),
                    better: Better::Lower,
                    values: figure(&|l| {
                        let d = metric.distribution(&l.summary);
                        (d.count > 0).then(|| d.percentile(q)).flatten()
                    }),
                    intervals,
                });
            }
            let mut tests = vec![None; runs.len()];
            if let Some((base, SampleSource::Records)) = &per_run[0] {
                for (i, p) in per_run.iter().enumerate().skip(1) {
                    if let Some((v, SampleSource::Records)) = p {
                        tests[i] = mann_whitney(base, v);
                    }
                }
            }
            rank_tests.push(RankTest { metric, tests });
        }
        if found
            .iter()
            .any(|x| x.is_some_and(|(l, _)| l.summary.goodput.is_some()))
        {
            rows.push(Row {
                name: "goodput req/s".into(),
                better: Better::Higher,
                values: figure(&|l| l.summary.goodput.as_ref().map(|g| g.goodput_rps)),
                intervals: none.clone(),
            });
            rows.push(Row {
                name: "attainment %".into(),
                better: Better::Higher,
                values: figure(&|l| l.summary.goodput.as_ref().map(|g| g.attainment_pct)),
                intervals: none.clone(),
            });
        }
        rows.push(Row {
            name: "failed".into(),
            better: Better::Lower,
            values: figure(&|l| Some(l.summary.failed as f64)),
            intervals: none,
        });
        levels.push(LevelComparison {
            label,
            rows,
            rank_tests,
            sources,
        });
    }
    let ids: Vec<String> = runs.iter().map(|r| r.entry.id.clone()).collect();
    let results: Vec<&crate::result::RunResult> = runs.iter().map(|r| &r.entry.result).collect();
    Comparison {
        workload_differences: workload::differences(&ids, &results),
        ids,
        levels,
    }
}

/// One line on a rank test, e.g. "TTFT: B slower (p = 0.003, P(B > A) = 0.71)".
pub fn describe_rank_test(metric: Metric, t: &MannWhitney) -> String {
    if !t.significant() {
        return format!(
            "{}: within noise (Mann-Whitney p = {:.3}, P(slower) = {:.2})",
            metric.name(),
            t.p_value,
            t.prob_b_greater
        );
    }
    let dir = if t.prob_b_greater > 0.5 {
        "slower"
    } else {
        "faster"
    };
    format!(
        "{}: {dir} (Mann-Whitney p = {:.2e}, P(slower) = {:.2})",
        metric.name(),
        t.p_value,
        t.prob_b_greater
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_matches_tables() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.959_963_985) - 0.025).abs() < 1e-7);
        assert!((normal_sf(-1.0) - 0.841_344_746).abs() < 1e-7);
        assert!((normal_sf(3.0) - 0.001_349_898).abs() < 1e-8);
    }

    #[test]
    fn mann_whitney_matches_the_textbook_formula() {
        // Full separation, 10 vs 10: U = 100, mean 50, sd sqrt(100*21/12);
        // z = 49.5/13.2288 = 3.7418, p = 2 * sf(3.7418) = 1.827e-4
        // (scipy.stats.mannwhitneyu(b, a, method="asymptotic") agrees).
        let a: Vec<f64> = (1..=10).map(f64::from).collect();
        let b: Vec<f64> = (11..=20).map(f64::from).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.u, 100.0);
        assert!((t.z - 3.741_7).abs() < 1e-3, "{}", t.z);
        assert!((t.p_value - 1.827e-4).abs() < 1e-6, "{}", t.p_value);
        assert_eq!(t.prob_b_greater, 1.0);
        assert!(t.significant());
        // The same samples: U = n²/2, nothing to see.
        let same = mann_whitney(&a, &a).unwrap();
        assert_eq!(same.u, 50.0);
        assert!(!same.significant());
        // Ties: all equal gives p = 1 without dividing by zero.
        let flat = mann_whitney(&[1.0; 10], &[1.0; 10]).unwrap();
        assert_eq!(flat.p_value, 1.0);
        assert!(mann_whitney(&a[..3], &b).is_none(), "too few samples");
    }

    #[test]
    fn percentile_matches_the_sorted_version() {
        let mut v: Vec<f64> = (0..101).map(|i| f64::from((i * 37) % 101)).collect();
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            let expect = crate::metrics::stats::percentile_sorted(&sorted, q);
            assert_eq!(percentile_unsorted(&mut v, q), expect, "q = {q}");
        }
    }

    #[test]
    fn bootstrap_separates_shifted_samples_and_not_equal_ones() {
        let mut rng = StdRng::seed_from_u64(3);
        let a: Vec<f64> = (0..400)
            .map(|_| 100.0 + rng.random_range(0.0..20.0))
            .collect();
        let b: Vec<f64> = (0..400)
            .map(|_| 100.0 + rng.random_range(0.0..20.0))
            .collect();
        let shifted: Vec<f64> = a.iter().map(|v| v + 5.0).collect();
        let iv = bootstrap_percentile_diff(&a, &shifted, 50.0, 1).unwrap();
        assert!(!iv.covers_zero(), "{iv:?}");
        assert!((iv.estimate - 5.0).abs() < 1e-9);
        let iv = bootstrap_percentile_diff(&a, &b, 50.0, 1).unwrap();
        assert!(iv.covers_zero(), "{iv:?}");
        assert!(iv.lo < iv.estimate && iv.estimate < iv.hi);
    }
}
