//! A loaded recommendation policy: which concurrency `recommend` measures next, and where C*
//! lies. The host runs the probes; the policy's answers are checked before they are obeyed,
//! because a probe it asks for costs real load on a real server: a concurrency outside
//! 1 ..= the goal's maximum, a request count of 0 or past [`MAX_PROBE_REQUESTS`], or a bracket
//! that contradicts itself is refused ([`PluginError::BadAnswer`]), never run or reported.

use super::PluginIdentity;
use super::bindings::recommend::RecommendPluginPre;
use super::bindings::recommend::exports::llm_loadtest::plugin::recommend_policy as wit;
use super::error::PluginError;
use super::inspect::ComponentFacts;
use super::pool::Pool;
use super::sandbox::StoreData;
use super::types::{Outcome, PolicyInfo, PolicyStep, ProbeSummary, RecommendGoal};

/// The most requests one probe may be asked to measure.
pub const MAX_PROBE_REQUESTS: u64 = 1_000_000;

/// A recommendation policy. Its calls are rare (one per probe) and run one at a time.
pub struct RecommendPolicy {
    pool: Pool<RecommendPluginPre<StoreData>>,
    info: PolicyInfo,
    identity: PluginIdentity,
    facts: ComponentFacts,
}

impl std::fmt::Debug for RecommendPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecommendPolicy")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl RecommendPolicy {
    pub(crate) fn new(
        pool: Pool<RecommendPluginPre<StoreData>>,
        mut identity: PluginIdentity,
        facts: ComponentFacts,
    ) -> Result<Self, PluginError> {
        let (info, _) = pool.call_on(0, "info", |live| {
            live.bindings
                .llm_loadtest_plugin_recommend_policy()
                .call_info(&mut live.store)
        })?;
        let info = PolicyInfo {
            name: info.name,
            version: info.version,
            description: info.description,
        };
        identity.name.clone_from(&info.name);
        identity.version.clone_from(&info.version);
        Ok(RecommendPolicy {
            pool,
            info,
            identity,
            facts,
        })
    }

    /// What the policy says it is.
    pub fn info(&self) -> &PolicyInfo {
        &self.info
    }

    /// Which plugin this is: name, version, contract version, hash, source.
    pub fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    /// The component's imports, by name.
    pub fn imports(&self) -> &[String] {
        &self.facts.imports
    }

    /// The component's exports, by name.
    pub fn exports(&self) -> &[String] {
        &self.facts.exports
    }

    fn refused(&self, call: &'static str, message: String) -> PluginError {
        PluginError::Guest {
            plugin: self.pool.plugin().to_owned(),
            call,
            message,
        }
    }

    fn bad_answer(&self, call: &'static str, message: String) -> PluginError {
        PluginError::BadAnswer {
            plugin: self.pool.plugin().to_owned(),
            call,
            message,
        }
    }

    /// The next move after `probes`, checked against `goal`.
    pub fn next(
        &self,
        goal: &RecommendGoal,
        probes: &[ProbeSummary],
    ) -> Result<PolicyStep, PluginError> {
        let call = "next";
        let wire: Vec<wit::ProbeResult> = probes.iter().map(wit::ProbeResult::from).collect();
        let step = self
            .pool
            .call_any(call, |live| {
                live.bindings
                    .llm_loadtest_plugin_recommend_policy()
                    .call_next(&mut live.store, &wit::Goal::from(goal), &wire)
            })?
            .map_err(|message| self.refused(call, message))?;
        let step = match step {
            wit::Step::Probe(p) => PolicyStep::Probe {
                concurrency: p.concurrency,
                requests: p.requests,
            },
            wit::Step::Done(o) => PolicyStep::Done(Outcome::from(o)),
        };
        check_step(goal, &step).map_err(|m| self.bad_answer(call, m))?;
        Ok(step)
    }

    /// The best answer `probes` give when the search is cut short.
    pub fn decide(
        &self,
        goal: &RecommendGoal,
        probes: &[ProbeSummary],
    ) -> Result<Option<Outcome>, PluginError> {
        let call = "decide";
        let wire: Vec<wit::ProbeResult> = probes.iter().map(wit::ProbeResult::from).collect();
        let outcome = self
            .pool
            .call_any(call, |live| {
                live.bindings
                    .llm_loadtest_plugin_recommend_policy()
                    .call_decide(&mut live.store, &wit::Goal::from(goal), &wire)
            })?
            .map(Outcome::from);
        if let Some(o) = &outcome {
            check_outcome(goal, o).map_err(|m| self.bad_answer(call, m))?;
        }
        Ok(outcome)
    }
}

/// Why `step` is not one the host will obey, if it is not.
fn check_step(goal: &RecommendGoal, step: &PolicyStep) -> Result<(), String> {
    match *step {
        PolicyStep::Probe {
            concurrency,
            requests,
        } => {
            if concurrency == 0 || concurrency > goal.max_concurrency {
                return Err(format!(
                    "asked for a probe at concurrency {concurrency}, outside 1..={}",
                    goal.max_concurrency
                ));
            }
            if requests == 0 || requests > MAX_PROBE_REQUESTS {
                return Err(format!(
                    "asked for a probe of {requests} requests, outside 1..={MAX_PROBE_REQUESTS}"
                ));
            }
            Ok(())
        }
        PolicyStep::Done(o) => check_outcome(goal, &o),
    }
}

fn check_outcome(goal: &RecommendGoal, outcome: &Outcome) -> Result<(), String> {
    match *outcome {
        Outcome::Found { lo, hi } if lo == 0 || hi <= lo => Err(format!(
            "answered the bracket {lo}–{hi}: C* must be at least 1 and below the first failing \
             concurrency"
        )),
        Outcome::Found { lo, .. } | Outcome::AtLeast(lo) if lo > goal.max_concurrency => {
            Err(format!(
                "answered C* = {lo}, above the largest concurrency allowed ({})",
                goal.max_concurrency
            ))
        }
        Outcome::AtLeast(0) => Err("answered \"at least 0\"".to_owned()),
        _ => Ok(()),
    }
}

impl From<&RecommendGoal> for wit::Goal {
    fn from(g: &RecommendGoal) -> Self {
        wit::Goal {
            target: g.target,
            max_concurrency: g.max_concurrency,
            peak_concurrency: g.peak_concurrency,
            options: g.options.clone(),
        }
    }
}

impl From<&ProbeSummary> for wit::ProbeResult {
    fn from(p: &ProbeSummary) -> Self {
        wit::ProbeResult {
            concurrency: p.concurrency,
            requests: p.requests,
            good: p.good,
            failed: p.failed,
            request_throughput: p.request_throughput,
            output_throughput: p.output_throughput,
            ttft_p50_ms: p.ttft_p50_ms,
            ttft_p99_ms: p.ttft_p99_ms,
            tpot_p50_ms: p.tpot_p50_ms,
            tpot_p99_ms: p.tpot_p99_ms,
            e2el_p50_ms: p.e2el_p50_ms,
            e2el_p99_ms: p.e2el_p99_ms,
        }
    }
}

impl From<wit::Outcome> for Outcome {
    fn from(o: wit::Outcome) -> Self {
        match o {
            wit::Outcome::Found(b) => Outcome::Found { lo: b.lo, hi: b.hi },
            wit::Outcome::None => Outcome::None,
            wit::Outcome::AtLeast(c) => Outcome::AtLeast(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_the_host_would_not_obey_are_refused() {
        let goal = RecommendGoal {
            target: 0.95,
            max_concurrency: 64,
            peak_concurrency: 500,
            options: Vec::new(),
        };
        let probe = |concurrency, requests| PolicyStep::Probe {
            concurrency,
            requests,
        };
        assert!(check_step(&goal, &probe(1, 74)).is_ok());
        assert!(check_step(&goal, &probe(64, MAX_PROBE_REQUESTS)).is_ok());
        for bad in [probe(0, 74), probe(65, 74), probe(8, 0), probe(8, u64::MAX)] {
            assert!(check_step(&goal, &bad).is_err(), "{bad:?}");
        }
        let done = |o| PolicyStep::Done(o);
        assert!(check_step(&goal, &done(Outcome::Found { lo: 8, hi: 9 })).is_ok());
        assert!(check_step(&goal, &done(Outcome::None)).is_ok());
        assert!(check_step(&goal, &done(Outcome::AtLeast(64))).is_ok());
        for bad in [
            Outcome::Found { lo: 9, hi: 9 },
            Outcome::Found { lo: 0, hi: 1 },
            Outcome::Found { lo: 65, hi: 70 },
            Outcome::AtLeast(0),
            Outcome::AtLeast(65),
        ] {
            let err = check_step(&goal, &done(bad)).expect_err("refused");
            assert!(!err.is_empty(), "{bad:?}");
        }
    }
}
