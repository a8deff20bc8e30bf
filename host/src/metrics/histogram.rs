//! HdrHistograms of a level's latencies, in microseconds.
//!
//! Exact percentiles come from the records (`stats`); histograms serve the
//! live progress view and the stored results, where they let shards of a
//! distributed run merge without loss.
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::RequestRecord;

/// An hour in microseconds: anything slower is clamped, not dropped.
const MAX_US: u64 = 3_600_000_000;

#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram `{name}` is not valid base64: {source}")]
    Base64 {
        name: &'static str,
        source: base64::DecodeError,
    },
    #[error("histogram `{name}` could not be decoded: {reason}")]
    Decode { name: &'static str, reason: String },
    #[error("histograms could not be merged: {0}")]
    Merge(String),
}

/// Latency histograms of one level.
#[derive(Debug, Clone)]
pub struct LevelHistograms {
    pub ttft: Histogram<u64>,
    pub tpot: Histogram<u64>,
    pub itl: Histogram<u64>,
    pub e2el: Histogram<u64>,
}

/// The stored form: V2 deflate encoding, base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SerializedHistograms {
    pub unit: String,
    pub ttft: String,
    pub tpot: String,
    pub itl: String,
    pub e2el: String,
}

fn new_hist() -> Histogram<u64> {
    // 1 µs to an hour at 3 significant digits: 0.1 % resolution.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

fn record_ms(h: &mut Histogram<u64>, ms: f64) {
    let us = (ms * 1e3).round().clamp(1.0, MAX_US as f64) as u64;
    h.saturating_record(us);
}

impl Default for LevelHistograms {
    fn default() -> Self {
        LevelHistograms {
            ttft: new_hist(),
            tpot: new_hist(),
            itl: new_hist(),
            e2el: new_hist(),
        }
    }
}

impl LevelHistograms {
    /// Add one successful, measured request.
    pub fn record(&mut self, r: &RequestRecord) {
        if !r.succeeded() || r.warmup {
            return;
        }
        if let Some(v) = r.ttft_ms {
            record_ms(&mut self.ttft, v);
        }
        if let Some(v) = r.tpot_ms() {
            record_ms(&mut self.tpot, v);
        }
        if let Some(v) = r.e2el_ms {
            record_ms(&mut self.e2el, v);
        }
        for &v in &r.itl_ms {
            record_ms(&mut self.itl, v);
        }
    }

    /// Merge another shard's histograms into these.
    pub fn merge(&mut self, other: &LevelHistograms) -> Result<(), HistogramError> {
        let m = |a: &mut Histogram<u64>, b: &Histogram<u64>| {
            a.add(b)
                .map_err(|e| HistogramError::Merge(format!("{e:?}")))
        };
        m(&mut self.ttft, &other.ttft)?;
        m(&mut self.tpot, &other.tpot)?;
        m(&mut self.itl, &other.itl)?;
        m(&mut self.e2el, &other.e2el)
    }

    pub fn serialize(&self) -> SerializedHistograms {
        let enc = |h: &Histogram<u64>| {
            let mut buf = Vec::new();
            // Serializing into a Vec cannot fail for an in-range histogram.
            let _ = V2DeflateSerializer::new().serialize(h, &mut buf);
            base64::engine::general_purpose::STANDARD.encode(buf)
        };
        SerializedHistograms {
            unit: "us".to_string(),
            ttft: enc(&self.ttft),
            tpot: enc(&self.tpot),
            itl: enc(&self.itl),
            e2el: enc(&self.e2el),
        }
    }

    pub fn deserialize(s: &SerializedHistograms) -> Result<LevelHistograms, HistogramError> {
        let dec = |name: &'static str, text: &str| -> Result<Histogram<u64>, HistogramError> {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|source| HistogramError::Base64 { name, source })?;
            Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| HistogramError::Decode {
                    name,
                    reason: format!("{e:?}"),
                })
        };
        Ok(LevelHistograms {
            ttft: dec("ttft", &s.ttft)?,
            tpot: dec("tpot", &s.tpot)?,
            itl: dec("itl", &s.itl)?,
            e2el: dec("e2el", &s.e2el)?,
        })
    }
}

/// A histogram's summary in milliseconds (it holds microseconds), at its 0.1 % resolution: what
/// a merge of shards without their records can report.
pub fn distribution(h: &Histogram<u64>) -> crate::metrics::stats::Distribution {
    if h.is_empty() {
        return crate::metrics::stats::Distribution::default();
    }
    let ms = |us: f64| us / 1e3;
    let at = |q: f64| ms(h.value_at_quantile(q / 100.0) as f64);
    crate::metrics::stats::Distribution {
        count: h.len(),
        mean: ms(h.mean()),
        std: ms(h.stdev()),
        min: ms(h.min() as f64),
        max: ms(h.max() as f64),
        p50: at(50.0),
        p90: at(90.0),
        p95: at(95.0),
        p99: at(99.0),
        p99_9: at(99.9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_merge_are_lossless() {
        let r = RequestRecord {
            ttft_ms: Some(50.0),
            e2el_ms: Some(100.0),
            latency_ms: 100.0,
            itl_ms: vec![10.0; 5],
            output_tokens: 6,
            ..Default::default()
        };
        let mut a = LevelHistograms::default();
        a.record(&r);
        let b = LevelHistograms::deserialize(&a.serialize()).unwrap();
        assert_eq!(b.itl.len(), 5);
        assert_eq!(b.ttft.value_at_quantile(0.5), a.ttft.value_at_quantile(0.5));
        let mut m = a.clone();
        m.merge(&b).unwrap();
        assert_eq!(m.itl.len(), 10);
        assert!(
            LevelHistograms::deserialize(&SerializedHistograms {
                ttft: "!!".into(),
                ..a.serialize()
            })
            .is_err()
        );
    }
}
