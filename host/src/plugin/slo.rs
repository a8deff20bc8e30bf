//! A loaded SLO policy: the per-request verdict behind goodput.

use super::PluginIdentity;
use super::bindings::slo::SloPluginPre;
use super::bindings::slo::exports::llm_loadtest::plugin::slo_policy as wit;
use super::error::PluginError;
use super::inspect::ComponentFacts;
use super::pool::Pool;
use super::sandbox::StoreData;
use super::types::{Measurement, Objective, PolicyInfo, Verdict};

/// Most reasons one verdict may carry, and their total text.
const MAX_REASONS: usize = 64;
const MAX_REASON_TEXT: usize = 64 * 1024;

/// An SLO policy, callable from many threads (calls run on a pool).
pub struct SloPolicy {
    pool: Pool<SloPluginPre<StoreData>>,
    info: PolicyInfo,
    identity: PluginIdentity,
    facts: ComponentFacts,
}

impl std::fmt::Debug for SloPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SloPolicy")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl SloPolicy {
    pub(crate) fn new(
        pool: Pool<SloPluginPre<StoreData>>,
        mut identity: PluginIdentity,
        facts: ComponentFacts,
    ) -> Result<Self, PluginError> {
        let (info, _) = pool.call_on(0, "info", |live| {
            live.bindings
                .llm_loadtest_plugin_slo_policy()
                .call_info(&mut live.store)
        })?;
        let info = PolicyInfo::from(info);
        identity.name.clone_from(&info.name);
        identity.version.clone_from(&info.version);
        Ok(SloPolicy {
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

    /// Reject objectives the policy does not understand, before a run.
    pub fn check_objectives(&self, objectives: &[Objective]) -> Result<(), PluginError> {
        let call = "check-objectives";
        let wire: Vec<wit::Objective> = objectives.iter().map(wit::Objective::from).collect();
        self.pool
            .call_any(call, |live| {
                live.bindings
                    .llm_loadtest_plugin_slo_policy()
                    .call_check_objectives(&mut live.store, &wire)
            })?
            .map_err(|message| PluginError::Guest {
                plugin: self.pool.plugin().to_owned(),
                call,
                message,
            })
    }

    /// Judge one request against the objectives.
    pub fn evaluate(
        &self,
        measurement: &Measurement,
        objectives: &[Objective],
    ) -> Result<Verdict, PluginError> {
        let call = "evaluate";
        let m = wit::Measurement::from(measurement);
        let wire: Vec<wit::Objective> = objectives.iter().map(wit::Objective::from).collect();
        let verdict = self.pool.call_any(call, |live| {
            live.bindings
                .llm_loadtest_plugin_slo_policy()
                .call_evaluate(&mut live.store, &m, &wire)
        })?;
        let text: usize = verdict.reasons.iter().map(String::len).sum();
        if verdict.reasons.len() > MAX_REASONS || text > MAX_REASON_TEXT {
            return Err(PluginError::OutputTooLarge {
                plugin: self.pool.plugin().to_owned(),
                call,
                what: format!("{} reasons ({text} bytes)", verdict.reasons.len()),
                limit: MAX_REASONS,
            });
        }
        Ok(Verdict::from(verdict))
    }
}
