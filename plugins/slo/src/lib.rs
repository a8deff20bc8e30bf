//! llm-loadtest's default SLO policy.
//!
//! A request is good iff it succeeded and meets every objective:
//! - `ttft`, `tpot`, `e2el`: the request's value is at most the threshold. A
//!   value the request does not have (the TPOT of a one-token output) meets
//!   the objective: there is nothing to violate it.
//! - `itl`: every inter-token gap of the request is at most the threshold,
//!   which is stricter than a percentile and is what a user watching the
//!   stream feels.

use std::cmp::Ordering;

use llm_loadtest_sdk::{Measurement, Objective, PolicyInfo, SloPolicy, Verdict};

/// The metrics this policy understands.
pub const METRICS: [&str; 4] = ["ttft", "tpot", "itl", "e2el"];

/// The default SLO policy.
pub struct DefaultSlo;

impl SloPolicy for DefaultSlo {
    fn info() -> PolicyInfo {
        PolicyInfo {
            name: "default".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Good = succeeded and ttft/tpot/e2el within thresholds, every ITL gap within its threshold".into(),
        }
    }

    fn check_objectives(objectives: &[Objective]) -> Result<(), String> {
        for o in objectives {
            if !METRICS.contains(&o.metric.as_str()) {
                return Err(format!(
                    "unknown SLO metric {:?}; the default policy knows {}",
                    o.metric,
                    METRICS.join(", ")
                ));
            }
            if !(o.threshold_ms.is_finite() && o.threshold_ms > 0.0) {
                return Err(format!(
                    "SLO threshold for {} must be a positive number of milliseconds, got {}",
                    o.metric, o.threshold_ms
                ));
            }
        }
        Ok(())
    }

    fn evaluate(m: &Measurement, objectives: &[Objective]) -> Verdict {
        if !m.succeeded {
            let class = m.error_class.as_deref().unwrap_or("unclassified");
            return Verdict {
                good: false,
                reasons: vec![format!("request failed ({class})")],
            };
        }
        let reasons: Vec<String> = objectives.iter().filter_map(|o| violation(m, o)).collect();
        Verdict {
            good: reasons.is_empty(),
            reasons,
        }
    }
}

/// Whether `value` misses a `threshold`. A NaN (which can only be a
/// measuring fault) misses it rather than passing silently.
fn exceeds(value: f64, threshold: f64) -> bool {
    !matches!(
        value.partial_cmp(&threshold),
        Some(Ordering::Less | Ordering::Equal)
    )
}

/// Why `m` misses `o`, or `None` when it meets it.
fn violation(m: &Measurement, o: &Objective) -> Option<String> {
    let t = o.threshold_ms;
    let single = |name: &str, value: Option<f64>| {
        value
            .filter(|v| exceeds(*v, t))
            .map(|v| format!("{name} {v:.3} ms > {t} ms"))
    };
    match o.metric.as_str() {
        "ttft" => single("ttft", m.ttft_ms),
        "tpot" => single("tpot", m.tpot_ms),
        "e2el" => single("e2el", m.e2el_ms),
        "itl" => {
            let over: Vec<f64> = m
                .itl_ms
                .iter()
                .copied()
                .filter(|g| exceeds(*g, t))
                .collect();
            let worst = over.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (!over.is_empty()).then(|| {
                format!(
                    "itl: {} of {} gaps > {t} ms (worst {worst:.3} ms)",
                    over.len(),
                    m.itl_ms.len()
                )
            })
        }
        // check-objectives rejects these before a run; a host that skipped
        // it still gets a verdict that says why rather than a silent pass.
        other => Some(format!("unknown SLO metric {other:?}")),
    }
}

llm_loadtest_sdk::register_slo_policy!(DefaultSlo);

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_measurement() -> Measurement {
        Measurement {
            succeeded: true,
            error_class: None,
            ttft_ms: Some(120.0),
            tpot_ms: Some(20.0),
            e2el_ms: Some(1000.0),
            itl_ms: vec![18.0, 22.0, 25.0],
            input_tokens: 100,
            output_tokens: 4,
        }
    }

    fn all(t: f64) -> Vec<Objective> {
        METRICS.iter().map(|m| Objective::new(*m, t)).collect()
    }

    #[test]
    fn meets_every_objective() {
        let v = DefaultSlo::evaluate(
            &ok_measurement(),
            &[
                Objective::new("ttft", 200.0),
                Objective::new("tpot", 20.0),
                Objective::new("itl", 25.0),
                Objective::new("e2el", 1000.0),
            ],
        );
        assert_eq!(
            v,
            Verdict {
                good: true,
                reasons: vec![]
            }
        );
    }

    #[test]
    fn no_objectives_means_good_when_succeeded() {
        assert!(DefaultSlo::evaluate(&ok_measurement(), &[]).good);
    }

    #[test]
    fn each_failed_objective_is_a_reason_with_measured_and_threshold() {
        let v = DefaultSlo::evaluate(&ok_measurement(), &all(19.0));
        assert!(!v.good);
        assert_eq!(
            v.reasons,
            vec![
                "ttft 120.000 ms > 19 ms",
                "tpot 20.000 ms > 19 ms",
                "itl: 2 of 3 gaps > 19 ms (worst 25.000 ms)",
                "e2el 1000.000 ms > 19 ms",
            ]
        );
    }

    #[test]
    fn one_itl_gap_over_the_threshold_fails_itl() {
        let mut m = ok_measurement();
        m.itl_ms = vec![10.0, 10.0, 50.5, 10.0];
        let v = DefaultSlo::evaluate(&m, &[Objective::new("itl", 50.0)]);
        assert_eq!(
            v.reasons,
            vec!["itl: 1 of 4 gaps > 50 ms (worst 50.500 ms)"]
        );
    }

    #[test]
    fn missing_values_meet_their_objectives() {
        let m = Measurement {
            succeeded: true,
            ttft_ms: Some(5.0),
            output_tokens: 1,
            ..Measurement::default()
        };
        let v = DefaultSlo::evaluate(&m, &all(10.0));
        assert!(v.good, "{:?}", v.reasons);
    }

    #[test]
    fn a_failed_request_is_never_good() {
        let mut m = ok_measurement();
        m.succeeded = false;
        m.error_class = Some("timeout".into());
        let v = DefaultSlo::evaluate(&m, &all(1e9));
        assert_eq!(v.reasons, vec!["request failed (timeout)"]);
        m.error_class = None;
        assert_eq!(
            DefaultSlo::evaluate(&m, &[]).reasons,
            vec!["request failed (unclassified)"]
        );
    }

    #[test]
    fn nan_measurement_fails() {
        let mut m = ok_measurement();
        m.ttft_ms = Some(f64::NAN);
        assert!(!DefaultSlo::evaluate(&m, &[Objective::new("ttft", 100.0)]).good);
    }

    #[test]
    fn check_objectives_accepts_known_metrics() {
        assert_eq!(DefaultSlo::check_objectives(&all(0.5)), Ok(()));
        assert_eq!(DefaultSlo::check_objectives(&[]), Ok(()));
    }

    #[test]
    fn check_objectives_rejects_unknown_metrics_and_bad_thresholds() {
        let e = DefaultSlo::check_objectives(&[Objective::new("ttfb", 10.0)]).unwrap_err();
        assert_eq!(
            e,
            "unknown SLO metric \"ttfb\"; the default policy knows ttft, tpot, itl, e2el"
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = DefaultSlo::check_objectives(&[Objective::new("ttft", bad)]).unwrap_err();
            assert!(
                e.starts_with("SLO threshold for ttft must be a positive"),
                "{e}"
            );
        }
    }

    #[test]
    fn unchecked_unknown_metric_is_not_a_silent_pass() {
        let v = DefaultSlo::evaluate(&ok_measurement(), &[Objective::new("x", 1.0)]);
        assert_eq!(v.reasons, vec!["unknown SLO metric \"x\""]);
    }
}
