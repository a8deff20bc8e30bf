//! One whole search as `recommend` makes it: the policy loaded, the probes run, the answer
//! drawn, and every probe gathered into one run to save. The command line and the API server
//! share it; they differ only in how they report and where they save.
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::probe::{self, Searched};
use super::{Ask, Outcome, Recommendation};
use crate::engine::ProgressEvent;
use crate::metrics::{LevelSummary, RequestRecord};
use crate::plan::Load;
use crate::plugin::{PluginError, RecommendGoal, Runtime};
use crate::result::{LevelResult, RunResult};
use crate::runner::RunSpec;

/// What to search for, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The workload, server and SLO (its levels are the search's to choose).
    pub spec: RunSpec,
    pub goal: RecommendGoal,
    pub ask: Ask,
    pub budget: Duration,
    /// The recommendation policy: a built-in name or a component's path.
    pub policy: String,
}

/// What a search found.
pub struct Answered {
    pub searched: Searched,
    /// None when no probe was decided.
    pub recommendation: Option<Recommendation>,
}

impl Answered {
    /// Why the search failed, when it did: a probe that could not run, a failed policy, a
    /// server that answered nothing — each that happened. Whatever was measured is still kept.
    pub fn failures(&self) -> Vec<String> {
        let s = &self.searched;
        let mut out = Vec::new();
        if let Some(e) = &s.error {
            out.push(e.to_string());
        }
        match &s.policy_error {
            Some(e @ PluginError::Guest { .. }) if s.probes.is_empty() => {
                out.push(format!(
                    "the recommendation policy refused this search: {e}"
                ));
            }
            Some(e) => out.push(format!("the recommendation policy failed: {e}")),
            None => {}
        }
        if let Some(why) = &s.dead_server {
            out.push(format!("the server answered no request: {why}"));
        }
        out
    }

    /// Every probe as a level of one run, with the recommendation when there is one; `None`
    /// when no probe ran. A search that failed still keeps what it measured.
    pub fn merged_run(&self) -> Option<(RunResult, Vec<Vec<RequestRecord>>)> {
        let s = &self.searched;
        let (first, rest) = s.outputs.split_first()?;
        let mut result = first.result.clone();
        let mut records = vec![first.records.concat()];
        for o in rest {
            result.levels.extend(o.result.levels.iter().cloned());
            records.push(o.records.concat());
            result.finished_at.clone_from(&o.result.finished_at);
        }
        result.interrupted = s.out_of_time
            || s.error.is_some()
            || s.policy_error.is_some()
            || s.dead_server.is_some();
        result.recommendation.clone_from(&self.recommendation);
        // Each probe sampled the GPUs on its own clock: the per-level figures stay, the raw
        // samples of the first probe alone would not match the merged levels.
        result.gpu = None;
        Some((result, records))
    }
}

/// Runs the search `plan` asks for. Each probe's progress goes to `events`; `on_probe` hears
/// of each probe as it ends. Fails only when the policy cannot be loaded.
pub async fn search(
    plan: &Plan,
    runtime: &Runtime,
    cancel: CancellationToken,
    events: &broadcast::Sender<ProgressEvent>,
    on_probe: impl FnMut(u32, &LevelSummary),
) -> Result<Answered, PluginError> {
    let policy = runtime.load_recommend_policy(&plan.policy)?;
    let searched = probe::find(
        &plan.spec,
        &policy,
        &plan.goal,
        runtime,
        plan.budget,
        cancel,
        events,
        on_probe,
    )
    .await;
    let identity = policy.identity();
    let policy_name = format!(
        "{} {} ({}, sha256 {})",
        identity.name,
        identity.version,
        identity.source,
        &identity.sha256[..12.min(identity.sha256.len())]
    );
    let recommendation = searched.outcome.map(|outcome| {
        // What the server and GPUs said during the last probe at the first failing
        // concurrency.
        let first_failing = match outcome {
            Outcome::Found { hi, .. } => Some(hi),
            Outcome::None => Some(1),
            Outcome::AtLeast(_) => None,
        };
        let at = |l: &&LevelResult, c: u32| {
            matches!(l.load, Load::Concurrency { concurrency } if concurrency == c)
        };
        let resource = first_failing.and_then(|c| {
            let level = searched
                .outputs
                .iter()
                .flat_map(|o| o.result.levels.iter())
                .rfind(|l| at(l, c))?;
            crate::telemetry::binding::resource(level.gpu.as_ref(), level.server.as_ref())
        });
        let mut rec = super::recommend(&plan.ask, outcome, &searched.probes)
            .with_binding_resource(resource);
        rec.policy = Some(policy_name.clone());
        rec
    });
    Ok(Answered {
        searched,
        recommendation,
    })
}
