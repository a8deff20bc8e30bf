//! Joining the results of a sharded run (`run --shard I/N`, one result per shard, each from its
//! own machine) into one run.
//!
//! Shards deal every level's requests round-robin by index, so the union of their records is the
//! single-machine run's requests: with every shard's records (`--save-requests`), the merged
//! level is summarised from that union exactly as a single run is — same percentiles, same
//! goodput verdicts — after each shard's records are moved onto one timeline by its level's
//! wall-clock start. Without records only the HdrHistograms can be merged (0.1 % resolution,
//! and no queue times or peaks); the result says which way each level was merged. A shard
//! that is missing, or that ran fewer levels, is named, and the result is marked partial:
//! nothing is filled in for it.
mod check;
mod level;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::result::{LevelResult, RunResult, SCHEMA_VERSION, ToolInfo};

/// One shard's result, with the name it is reported under (its file).
pub struct ShardInput {
    pub name: String,
    pub result: RunResult,
}

/// Why results cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error(
        "{0} is not a shard's result (it has no shard settings): merge joins the results of \
         `run --shard I/N` or `run --shards N`"
    )]
    NotAShard(String),
    #[error("{first} and {second} are both shard {shard}")]
    Duplicate {
        first: String,
        second: String,
        shard: String,
    },
    #[error("{name} is a shard of {count}, {first} of {first_count}: they are not one run")]
    Count {
        name: String,
        count: u32,
        first: String,
        first_count: u32,
    },
    #[error("{name} was not run like {first}: {what}")]
    Mismatch {
        name: String,
        first: String,
        what: String,
    },
    #[error("{name}, level {level}: {what}")]
    Level {
        name: String,
        level: String,
        what: String,
    },
}

/// How a merge was made, stored with the merged result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MergeReport {
    /// Shards the run was split into.
    pub shards: u32,
    /// The shards merged (from 0), and the ones missing: a run with any missing is partial.
    pub merged: Vec<u32>,
    pub missing: Vec<u32>,
    /// The files merged, by shard.
    pub sources: Vec<String>,
    pub levels: Vec<MergedLevel>,
}

impl MergeReport {
    /// Whether some shard's requests are not in the result.
    pub fn partial(&self) -> bool {
        !self.missing.is_empty() || self.levels.iter().any(|l| !l.missing.is_empty())
    }
}

/// How one level was merged, and how the shards ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MergedLevel {
    pub label: String,
    /// `records`: summarised from every shard's requests, exact; `histograms`: HdrHistograms
    /// merged (0.1 % resolution; queue times, peaks and token checks are not merged).
    pub method: String,
    /// Shards that have no result for this level (they stopped before it).
    pub missing: Vec<u32>,
    pub shards: Vec<ShardLevel>,
}

/// One shard's part of a level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShardLevel {
    pub shard: u32,
    /// When this shard started the level, after the first shard that did, in ms.
    pub start_offset_ms: f64,
    /// When it started after the level was due (`--start-at` + k × `--level-interval`), in ms;
    /// absent without a shared start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<f64>,
    /// Measured requests, and their share of the level's, in %.
    pub requests: u64,
    pub share_pct: f64,
    pub failed: u64,
    /// The shard's own client load: a client-limited shard limits the merged measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<crate::engine::client_load::ClientLoad>,
}

/// Merge shards' results into one run. The shards must be one run's: the same settings (but
/// for where each ran), plugins and levels, each shard at most once.
pub fn merge(inputs: Vec<ShardInput>) -> Result<RunResult, MergeError> {
    let shards = check::shards(&inputs)?;
    let first = &inputs[0].result;
    let count = shards.count;
    let mut levels = Vec::new();
    let mut reports = Vec::new();
    let most = inputs
        .iter()
        .map(|i| i.result.levels.len())
        .max()
        .unwrap_or(0);
    let rejudge = crate::runner::Rejudge::default();
    for k in 0..most {
        let parts: Vec<(u32, &str, &LevelResult)> = inputs
            .iter()
            .zip(&shards.indices)
            .filter_map(|(i, &s)| i.result.levels.get(k).map(|l| (s, i.name.as_str(), l)))
            .collect();
        let due = check::due(first, k);
        let (merged, report) = level::merge(&parts, first, due, &rejudge)?;
        let missing: Vec<u32> = (0..count)
            .filter(|s| !parts.iter().any(|(i, _, _)| i == s))
            .collect();
        levels.push(merged);
        reports.push(MergedLevel { missing, ..report });
    }
    let mut settings = first.settings.clone();
    settings.shard = None;
    for i in &inputs[1..] {
        for t in &i.result.settings.tags {
            if !settings.tags.contains(t) {
                settings.tags.push(t.clone());
            }
        }
    }
    let mut arrival: Vec<String> = inputs
        .iter()
        .filter_map(|i| i.result.settings.arrival_times.clone())
        .collect();
    arrival.sort();
    arrival.dedup();
    settings.arrival_times = (!arrival.is_empty()).then(|| arrival.join("; "));
    let report = MergeReport {
        shards: count,
        merged: shards.indices.clone(),
        missing: (0..count).filter(|s| !shards.indices.contains(s)).collect(),
        sources: inputs.iter().map(|i| i.name.clone()).collect(),
        levels: reports,
    };
    let partial = report.partial();
    Ok(RunResult {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo::current(),
        started_at: earliest(inputs.iter().map(|i| i.result.started_at.as_str()), false),
        finished_at: earliest(inputs.iter().map(|i| i.result.finished_at.as_str()), true),
        interrupted: partial || inputs.iter().any(|i| i.result.interrupted),
        settings,
        adapter: first.adapter.clone(),
        slo_policy: first.slo_policy.clone(),
        levels,
        recommendation: None,
        // Each shard sampled its own machine: telemetry is not merged (it stays in the shards'
        // results).
        gpu: None,
        server_metrics: None,
        merge: Some(report),
        // Shards' series are not merged: each is one shard's view of the load.
        load_series: None,
    })
}

/// The earliest (or, `latest`, the latest) of RFC 3339 instants, as written: same-format UTC
/// stamps order as text.
fn earliest<'a>(stamps: impl Iterator<Item = &'a str>, latest: bool) -> String {
    let stamps: Vec<&str> = stamps.collect();
    let pick = if latest {
        stamps.iter().max()
    } else {
        stamps.iter().min()
    };
    pick.map(|s| (*s).to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests;
