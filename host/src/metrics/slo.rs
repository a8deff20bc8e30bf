//! Service-level objectives: `--slo ttft:500ms,tpot:50ms,e2el:10s`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
