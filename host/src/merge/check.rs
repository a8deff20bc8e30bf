//! Whether results are shards of one run: refused when not, with what differs, because a merge
//! of unlike runs would be a number about no workload anyone sent.
use std::time::{Duration, SystemTime};

use super::{MergeError, ShardInput};
use crate::result::{RunResult, RunSettings};

/// The shards given: how many the run had, and which each input is.
pub(super) struct Shards {
    pub count: u32,
    /// Per input, its shard index (from 0).
    pub indices: Vec<u32>,
}

/// Settings that may differ between shards: where and when each ran, what its own machine saw.
const PER_SHARD: [&str; 5] = [
    "shard",
    "arrival_times",
    "served_model",
    "server_version",
    "tags",
];

pub(super) fn shards(inputs: &[ShardInput]) -> Result<Shards, MergeError> {
    let first = inputs.first().ok_or(MergeError::Empty)?;
    let shard_of = |i: &ShardInput| {
        i.result
            .settings
            .shard
            .clone()
            .ok_or_else(|| MergeError::NotAShard(i.name.clone()))
    };
    let first_shard = shard_of(first)?;
    let mut indices: Vec<u32> = Vec::new();
    for (n, input) in inputs.iter().enumerate() {
        let shard = shard_of(input)?;
        if shard.count != first_shard.count {
            return Err(MergeError::Count {
                name: input.name.clone(),
                count: shard.count,
                first: first.name.clone(),
                first_count: first_shard.count,
            });
        }
        if let Some(other) = indices.iter().position(|&i| i == shard.index) {
            return Err(MergeError::Duplicate {
                first: inputs[other].name.clone(),
                second: input.name.clone(),
                shard: format!("{}/{}", shard.index + 1, shard.count),
            });
        }
        if (&shard.start_at, shard.level_interval_s)
            != (&first_shard.start_at, first_shard.level_interval_s)
        {
            return Err(mismatch(
                input,
                first,
                format!(
                    "its levels were due from {} every {:?} s, the first's from {} every {:?} s",
                    shard.start_at.as_deref().unwrap_or("(no shared start)"),
                    shard.level_interval_s,
                    first_shard
                        .start_at
                        .as_deref()
                        .unwrap_or("(no shared start)"),
                    first_shard.level_interval_s,
                ),
            ));
        }
        if n > 0 {
            like(input, first)?;
        }
        indices.push(shard.index);
    }
    Ok(Shards {
        count: first_shard.count,
        indices,
    })
}

fn mismatch(input: &ShardInput, first: &ShardInput, what: String) -> MergeError {
    MergeError::Mismatch {
        name: input.name.clone(),
        first: first.name.clone(),
        what,
    }
}

/// The same settings, plugins and level plans as the first shard (a shard that stopped early
/// has fewer levels; those it has must be the same).
fn like(input: &ShardInput, first: &ShardInput) -> Result<(), MergeError> {
    let (a, b) = (&input.result, &first.result);
    let differs = differing_settings(&a.settings, &b.settings);
    if !differs.is_empty() {
        return Err(mismatch(input, first, differs.join("; ")));
    }
    if a.adapter.sha256 != b.adapter.sha256 {
        return Err(mismatch(
            input,
            first,
            format!(
                "adapter {} (sha256 {}) against {} (sha256 {})",
                a.adapter.name, a.adapter.sha256, b.adapter.name, b.adapter.sha256
            ),
        ));
    }
    let policy = |r: &RunResult| r.slo_policy.as_ref().map(|p| p.sha256.clone());
    if policy(a) != policy(b) {
        return Err(mismatch(input, first, "another SLO policy".to_owned()));
    }
    for (la, lb) in a.levels.iter().zip(&b.levels) {
        if (la.load, la.bound, la.warmup) != (lb.load, lb.bound, lb.warmup) {
            return Err(mismatch(
                input,
                first,
                format!(
                    "level {} ({:?}, {:?}) where the first ran {} ({:?}, {:?})",
                    la.label, la.bound, la.warmup, lb.label, lb.bound, lb.warmup
                ),
            ));
        }
    }
    Ok(())
}

/// `key: a against b` for each setting that differs, but for the per-shard ones.
fn differing_settings(a: &RunSettings, b: &RunSettings) -> Vec<String> {
    let as_map = |s: &RunSettings| match serde_json::to_value(s) {
        Ok(serde_json::Value::Object(mut m)) => {
            for key in PER_SHARD {
                m.remove(key);
            }
            m
        }
        _ => serde_json::Map::new(),
    };
    let (a, b) = (as_map(a), as_map(b));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show =
                |v: Option<&serde_json::Value>| v.map_or("(unset)".into(), |v| v.to_string());
            format!("{k} {} against {}", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}

/// When level `k` was due, when the shards shared a start.
pub(super) fn due(first: &RunResult, k: usize) -> Option<SystemTime> {
    let shard = first.settings.shard.as_ref()?;
    let at = humantime::parse_rfc3339_weak(shard.start_at.as_deref()?).ok()?;
    let every = Duration::from_secs_f64(shard.level_interval_s.unwrap_or(0.0).max(0.0));
    Some(at + every.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX)))
}
