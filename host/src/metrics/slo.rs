//! Service-level objectives: `--slo ttft:500ms,tpot:50ms,e2el:10s`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::stats::Distribution;
use super::summary::LevelSummary;

/// A per-request metric an objective can bound.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SloMetric {
    Ttft,
    Tpot,
    /// Every inter-token gap of the request.
    Itl,
    E2el,
}

impl SloMetric {
    pub fn name(self) -> &'static str {
        match self {
            SloMetric::Ttft => "ttft",
            SloMetric::Tpot => "tpot",
            SloMetric::Itl => "itl",
            SloMetric::E2el => "e2el",
        }
    }

    /// The level's distribution of this metric.
    pub fn distribution(self, s: &LevelSummary) -> &Distribution {
        match self {
            SloMetric::Ttft => &s.ttft_ms,
            SloMetric::Tpot => &s.tpot_ms,
            SloMetric::Itl => &s.itl_ms,
            SloMetric::E2el => &s.e2el_ms,
        }
    }

    fn parse(s: &str) -> Option<SloMetric> {
        Some(match s {
            "ttft" => SloMetric::Ttft,
            "tpot" => SloMetric::Tpot,
            "itl" => SloMetric::Itl,
            "e2el" => SloMetric::E2el,
            _ => return None,
        })
    }
}

/// An objective on a metric a non-streamed run does not measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: TTFT, TPOT and ITL are not measured with --no-stream (a whole response arrives at \
     once); judge e2el, or stream",
    .0.name()
)]
pub struct Unmeasured(pub SloMetric);

/// Refuses objectives on TTFT, TPOT or ITL for a run that does not stream: a whole body
/// arrives at once, they stay unmeasured, and the default policy passes an unmeasured metric,
/// so every request would be judged good.
pub fn check_measurable(objectives: &[Objective], stream: bool) -> Result<(), Unmeasured> {
    match objectives.iter().find(|o| o.metric != SloMetric::E2el) {
        Some(o) if !stream => Err(Unmeasured(o.metric)),
        _ => Ok(()),
    }
}

/// One objective: the metric must not exceed the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Objective {
    pub metric: SloMetric,
    pub threshold_ms: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SloParseError {
    #[error("SLO `{0}` is not METRIC:DURATION (e.g. ttft:500ms)")]
    Shape(String),
    #[error("unknown SLO metric `{0}`: use ttft, tpot, itl or e2el")]
    Metric(String),
    #[error("SLO `{item}`: {reason}")]
    Duration { item: String, reason: String },
    #[error("SLO metric `{0}` is given twice")]
    Repeated(String),
}

/// Parse `ttft:500ms,tpot:50ms` (any subset, any order).
pub fn parse_objectives(spec: &str) -> Result<Vec<Objective>, SloParseError> {
    let mut out: Vec<Objective> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (metric, value) = item
            .split_once(':')
            .ok_or_else(|| SloParseError::Shape(item.to_string()))?;
        let metric = metric.trim().to_ascii_lowercase();
        let metric =
            SloMetric::parse(&metric).ok_or_else(|| SloParseError::Metric(metric.clone()))?;
        if out.iter().any(|o| o.metric == metric) {
            return Err(SloParseError::Repeated(metric.name().to_string()));
        }
        let threshold =
            crate::duration::parse(value.trim()).map_err(|e| SloParseError::Duration {
                item: item.to_string(),
                reason: e.to_string(),
            })?;
        if threshold.is_zero() {
            return Err(SloParseError::Duration {
                item: item.to_string(),
                reason: "the threshold must be above zero".to_string(),
            });
        }
        out.push(Objective {
            metric,
            threshold_ms: threshold.as_secs_f64() * 1e3,
        });
    }
    if out.is_empty() {
        return Err(SloParseError::Shape(spec.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_metrics_are_refused_only_without_streaming() {
        let o = parse_objectives("e2el:10s,tpot:50ms").unwrap();
        assert_eq!(check_measurable(&o, true), Ok(()));
        assert_eq!(
            check_measurable(&o, false),
            Err(Unmeasured(SloMetric::Tpot))
        );
        let e2el = parse_objectives("e2el:10s").unwrap();
        assert_eq!(check_measurable(&e2el, false), Ok(()));
    }

    #[test]
    fn parses_any_subset() {
        let o = parse_objectives("ttft:500ms, tpot:50ms,e2el:10s").unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[0].metric, SloMetric::Ttft);
        assert_eq!(o[0].threshold_ms, 500.0);
        assert_eq!(o[2].threshold_ms, 10_000.0);
        assert_eq!(parse_objectives("itl:0.2s").unwrap()[0].threshold_ms, 200.0);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            parse_objectives("ttft"),
            Err(SloParseError::Shape(_))
        ));
        assert!(matches!(
            parse_objectives("foo:1s"),
            Err(SloParseError::Metric(_))
        ));
        assert!(matches!(
            parse_objectives("ttft:abc"),
            Err(SloParseError::Duration { .. })
        ));
        assert!(matches!(
            parse_objectives("ttft:0ms"),
            Err(SloParseError::Duration { .. })
        ));
        assert!(matches!(
            parse_objectives("ttft:1s,ttft:2s"),
            Err(SloParseError::Repeated(_))
        ));
        assert!(parse_objectives("").is_err());
    }
}
