//! Runs whose process died (SIGKILL, power loss, a crash) stay `running` in
//! the store. sled's exclusive lock means that once we hold the store, no
//! process is writing to it, so every `running` entry found on open is such
//! a run: mark it interrupted and rebuild its levels from the records that
//! reached the disk.
use super::{RunEntry, RunStatus, Store, StoreError};
use crate::engine::Bound;
use crate::metrics::histogram::LevelHistograms;
use crate::metrics::{LevelSummary, RequestRecord};
use crate::result::LevelResult;

pub(super) fn mark_dead_runs(store: &dyn Store) -> Result<(), StoreError> {
    for id in store.ids()? {
        // An unreadable entry (another schema version) is reported where it
        // is read; it is not ours to rewrite.
        let Ok(Some(entry)) = store.entry(&id) else {
            continue;
        };
        if entry.status != RunStatus::Running {
            continue;
        }
        let records = store.records(&id)?;
        let rebuilt = rebuild(entry, &records);
        tracing::info!(run = %id, "marked interrupted: its process is gone");
        store.put_entry(&rebuilt)?;
    }
    store.flush()
}

/// The entry of a dead run, its levels summarised from its saved records.
/// SLO verdicts need the policy plugin and the objectives of the run, which
/// died with it, so rebuilt levels carry no goodput.
pub(super) fn rebuild(mut entry: RunEntry, records: &[Vec<RequestRecord>]) -> RunEntry {
    let last = records.iter().rposition(|r| !r.is_empty());
    let mut levels = Vec::new();
    for (i, plan) in entry.plans.iter().enumerate() {
        let Some(recs) = records.get(i).filter(|r| !r.is_empty()) else {
            continue;
        };
        let measured = recs.iter().filter(|r| !r.warmup).count() as u64;
        let reached_bound = matches!(plan.bound, Bound::Requests(n) if measured >= n);
        let mut hist = LevelHistograms::default();
        for r in recs {
            hist.record(r);
        }
        let wall_s = recs
            .iter()
            .map(|r| r.send_s + r.latency_ms / 1e3)
            .fold(0.0, f64::max);
        levels.push(LevelResult {
            label: plan.label.clone(),
            load: plan.load,
            bound: plan.bound,
            warmup: plan.warmup,
            interrupted: Some(i) == last && !reached_bound,
            wall_s,
            summary: LevelSummary::compute(recs, None),
            histograms: hist.serialize(),
            requests: None,
            gpu: None,
            server: None,
        });
    }
    let saved: usize = records.iter().map(Vec::len).sum();
    entry.note = Some(format!(
        "the process writing it (pid {}) stopped before the run finished; \
         levels rebuilt from the {saved} request records saved",
        entry.pid
    ));
    entry.status = RunStatus::Interrupted;
    entry.result.interrupted = true;
    entry.result.finished_at = entry.updated_at.clone();
    entry.result.levels = levels;
    entry
}
