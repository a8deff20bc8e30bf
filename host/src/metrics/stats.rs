//! Exact descriptive statistics over a level's values.
//!
//! Percentiles interpolate linearly between closest ranks, as numpy's default
//! does, so our figures match vLLM's `bench serve` on the same requests.
//! (HdrHistograms are kept too, for live progress and for merging shards.)
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The percentiles every distribution reports.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 95.0, 99.0, 99.9];

/// Summary of one metric over a level, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Distribution {
    pub count: u64,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
}

/// Serde for a latency distribution that may hold nothing: `null` when no value was measured
/// (TTFT, TPOT and ITL with `--no-stream`; every latency of a level whose requests all failed),
/// so no reader takes zeros for measurements. `null` reads back as an empty distribution.
pub mod unmeasured_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Distribution;

    pub fn serialize<S: Serializer>(d: &Distribution, s: S) -> Result<S::Ok, S::Error> {
        if d.count == 0 {
            s.serialize_none()
        } else {
            s.serialize_some(d)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Distribution, D::Error> {
        Ok(Option::<Distribution>::deserialize(d)?.unwrap_or_default())
    }
}

impl Distribution {
    /// Summarise `values` (any order). Empty input gives a zero count.
    pub fn from_values(values: &mut [f64]) -> Distribution {
        if values.is_empty() {
            return Distribution::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        // Population standard deviation, as numpy.std (ddof = 0) in vLLM.
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let p = |q: f64| percentile_sorted(values, q);
        Distribution {
            count: values.len() as u64,
            mean,
            std: var.sqrt(),
            min: values[0],
            max: values[values.len() - 1],
            p50: p(50.0),
            p90: p(90.0),
            p95: p(95.0),
            p99: p(99.0),
            p99_9: p(99.9),
        }
    }

    /// The value at percentile `q` among those this distribution reports.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        [
            (50.0, self.p50),
            (90.0, self.p90),
            (95.0, self.p95),
            (99.0, self.p99),
            (99.9, self.p99_9),
        ]
        .into_iter()
        .find(|(k, _)| (k - q).abs() < 1e-9)
        .map(|(_, v)| v)
    }
}

/// Linear interpolation between closest ranks over sorted values.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = (q / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            let frac = rank - lo as f64;
            sorted[lo] + (sorted[hi] - sorted[lo]) * frac
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear_percentiles() {
        // numpy.percentile([1, 2, 3, 4], [50, 90, 99]) = [2.5, 3.7, 3.97]
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        let d = Distribution::from_values(&mut v);
        assert!((d.p50 - 2.5).abs() < 1e-12);
        assert!((d.p90 - 3.7).abs() < 1e-12);
        assert!((d.p99 - 3.97).abs() < 1e-12);
        assert!((d.mean - 2.5).abs() < 1e-12);
        // numpy.std([1, 2, 3, 4]) = 1.118033988749895
        assert!((d.std - 1.118_033_988_749_895).abs() < 1e-12);
        assert_eq!((d.min, d.max, d.count), (1.0, 4.0, 4));
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(Distribution::from_values(&mut []).count, 0);
        let d = Distribution::from_values(&mut [7.0]);
        assert_eq!((d.p50, d.p99_9, d.std), (7.0, 7.0, 0.0));
    }
}
