//! llm-loadtest's default recommendation policy.
//!
//! It doubles the concurrency from 1 until a probe misses the target, then bisects between the
//! largest pass and the smallest fail until they are adjacent or within 2 % of each other. Each
//! concurrency's probes are pooled and judged by a 95 % Wilson interval of their attainment: a
//! probe whose interval straddles the target is measured again, up to 960 requests, after which
//! its point estimate decides. `--policy-option` changes the first probe's size, the request cap,
//! the bracket tolerance and the interval's z ([`search::OPTIONS`]). See [`search`] for the rules
//! and their tests; this file is only the component's face.

pub mod search;

use llm_loadtest_sdk::recommend::{Goal, Outcome, PolicyInfo, ProbeResult, RecommendPolicy, Step};

use search::SearchConfig;

/// The default recommendation policy.
pub struct DefaultRecommend;

impl RecommendPolicy for DefaultRecommend {
    fn info() -> PolicyInfo {
        PolicyInfo {
            name: "default".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Doubling then bisection to a 2 % bracket; each probe judged by a 95 % \
                          Wilson interval, repeated while it straddles the target"
                .into(),
        }
    }

    fn next(goal: &Goal, probes: &[ProbeResult]) -> Result<Step, String> {
        Ok(search::next(&SearchConfig::try_from(goal)?, probes))
    }

    fn decide(goal: &Goal, probes: &[ProbeResult]) -> Option<Outcome> {
        // `next` has accepted this goal before the host can ask: it is valid here.
        search::current(&SearchConfig::try_from(goal).ok()?, probes)
    }
}

llm_loadtest_sdk::register_recommend_policy!(DefaultRecommend);

#[cfg(test)]
mod tests {
    use super::*;

    fn goal(target: f64) -> Goal {
        Goal {
            target,
            max_concurrency: 64,
            peak_concurrency: 500,
            options: Vec::new(),
        }
    }

    fn with(options: &[(&str, &str)]) -> Goal {
        Goal {
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..goal(0.8)
        }
    }

    #[test]
    fn starts_at_one_and_refuses_a_target_outside_0_1() {
        assert_eq!(
            DefaultRecommend::next(&goal(0.95), &[]),
            Ok(Step::Probe {
                concurrency: 1,
                requests: 74
            })
        );
        for bad in [0.0, 1.0, 95.0, f64::NAN] {
            let err = DefaultRecommend::next(&goal(bad), &[]).expect_err("refused");
            assert!(err.contains("above 0 and below 1"), "{err}");
        }
    }

    #[test]
    fn options_change_the_search_and_bad_ones_are_refused() {
        let first = |g: &Goal| DefaultRecommend::next(g, &[]);
        assert_eq!(
            first(&with(&[("min-requests", "16")])),
            Ok(Step::Probe {
                concurrency: 1,
                requests: 17
            }),
            "at 80 % an all-good probe passes from 17 requests"
        );
        let cfg = SearchConfig::try_from(&with(&[
            ("max-requests", "2000"),
            ("tolerance", "0.05"),
            ("z", "2.576"),
        ]))
        .expect("valid");
        assert_eq!(
            (cfg.max_requests, cfg.tolerance, cfg.z),
            (2000, 0.05, 2.576)
        );
        for (bad, says) in [
            (("speed", "11"), "unknown policy option"),
            (("min-requests", "0"), "whole number above 0"),
            (("tolerance", "1.5"), "share"),
            (("z", "fast"), "above 0"),
        ] {
            let err = first(&with(&[bad])).expect_err("refused");
            assert!(err.contains(says), "{err}");
        }
        let err =
            first(&with(&[("min-requests", "100"), ("max-requests", "50")])).expect_err("refused");
        assert!(err.contains("above max-requests"), "{err}");
    }

    #[test]
    fn decides_from_probes_cut_short() {
        let p = |concurrency, requests, good| ProbeResult {
            concurrency,
            requests,
            good,
            ..ProbeResult::default()
        };
        assert_eq!(DefaultRecommend::decide(&goal(0.95), &[]), None);
        assert_eq!(
            DefaultRecommend::decide(&goal(0.95), &[p(1, 74, 74), p(2, 74, 74), p(4, 74, 10)]),
            Some(Outcome::Found { lo: 2, hi: 4 })
        );
        assert_eq!(
            DefaultRecommend::decide(&goal(0.95), &[p(1, 74, 74)]),
            Some(Outcome::AtLeast(1))
        );
        assert_eq!(
            DefaultRecommend::decide(&goal(0.95), &[p(1, 74, 3)]),
            Some(Outcome::None)
        );
    }
}
