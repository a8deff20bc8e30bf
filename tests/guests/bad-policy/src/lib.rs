//! A recommendation policy that misbehaves on request. The goal's `peak_concurrency` picks how
//! (a test sets it with `--peak-concurrency`), so one component serves every failure test:
//! - 1: `next` traps (panics) before any probe;
//! - 2: asks for a probe at concurrency 0, which the host must refuse;
//! - 3: loops forever in `next`, which the call deadline must cut;
//! - 4: probes concurrency 1 with 8 requests, then traps on the next call;
//! - anything else: probes 1 then 2 with 8 requests each and answers "found 1–2".

use llm_loadtest_sdk::recommend::{Goal, Outcome, PolicyInfo, ProbeResult, RecommendPolicy, Step};

pub struct BadPolicy;

impl RecommendPolicy for BadPolicy {
    fn info() -> PolicyInfo {
        PolicyInfo {
            name: "bad-policy".into(),
            version: "0.0.1".into(),
            description: "misbehaves as its goal's peak concurrency says".into(),
        }
    }

    fn next(goal: &Goal, probes: &[ProbeResult]) -> Result<Step, String> {
        let probe = |concurrency| {
            Ok(Step::Probe {
                concurrency,
                requests: 8,
            })
        };
        match (goal.peak_concurrency, probes.len()) {
            (1, _) => panic!("bad-policy was asked to trap"),
            (2, _) => probe(0),
            (3, _) => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            (4, 0) => probe(1),
            (4, _) => panic!("bad-policy traps after its first probe"),
            (_, 0) => probe(1),
            (_, 1) => probe(2),
            _ => Ok(Step::Done(Outcome::Found { lo: 1, hi: 2 })),
        }
    }

    fn decide(_goal: &Goal, _probes: &[ProbeResult]) -> Option<Outcome> {
        None
    }
}

llm_loadtest_sdk::register_recommend_policy!(BadPolicy);
