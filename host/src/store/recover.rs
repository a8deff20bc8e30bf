//! Runs whose process died (SIGKILL, power loss, a crash) stay `running` in
//! the store, their records in a journal nobody holds any more (see `journal`). On
//! open, every `running` entry whose journal's lock can be taken (its writer is gone) is
//! such a run: its journal's records move into the store, its levels are rebuilt from them,
//! it is marked interrupted, and the journal is deleted. A run whose writer still holds its
//! journal is left alone. A journal with no entry in the store (its process died between
//! creating the journal and registering the run) is recovered from its own first line.
use super::{RunEntry, RunStatus, Store, StoreError, journal};
use crate::metrics::histogram::LevelHistograms;
use crate::metrics::{LevelSummary, RequestRecord};
use crate::plan::Bound;
use crate::result::LevelResult;

pub(super) fn mark_dead_runs(store: &dyn Store) -> Result<(), StoreError> {
    let judge = crate::runner::Rejudge::default();
    let ids = store.ids()?;
    for id in &ids {
        // An unreadable entry (another schema version) is reported where it
        // is read; it is not ours to rewrite.
        let Ok(Some(entry)) = store.entry(id) else {
            continue;
        };
        if entry.status != RunStatus::Running {
            continue;
        }
        let path = journal::path(store.data_dir(), id);
        if path.exists() {
            if journal::writer_alive(&path) {
                continue;
            }
            recover_journal(store, Some(entry), &path, &judge)?;
        } else {
            // Written before journals, or its journal is lost: what the store holds.
            let records = store.records(id)?;
            store.put_entry(&rebuild(entry, &records, 0, &judge))?;
            tracing::info!(run = %id, "marked interrupted: its process is gone");
        }
    }
    for path in journal::all(store.data_dir()) {
        let known = path
            .file_stem()
            .is_some_and(|s| ids.iter().any(|id| s.to_string_lossy() == id.as_str()));
        if !known && !journal::writer_alive(&path) {
            recover_journal(store, None, &path, &judge)?;
        }
    }
    store.flush()
}

/// Moves a dead run's journal into the store as an interrupted run, then deletes it. An
/// unreadable journal is left where it is, and said.
fn recover_journal(
    store: &dyn Store,
    entry: Option<RunEntry>,
    path: &std::path::Path,
    judge: &crate::runner::Rejudge,
) -> Result<(), StoreError> {
    let contents = match journal::read(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("a dead run's journal could not be read, left in place: {e}");
            return Ok(());
        }
    };
    let entry = entry.unwrap_or(contents.entry);
    for (level, recs) in contents.records.iter().enumerate() {
        store.put_records(&entry.id, level, recs)?;
    }
    let records = store.records(&entry.id)?;
    let id = entry.id.clone();
    store.put_entry(&rebuild(entry, &records, contents.unreadable, judge))?;
    store.flush()?;
    std::fs::remove_file(path).map_err(|e| StoreError::Journal {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    tracing::info!(run = %id, "marked interrupted: its process is gone");
    Ok(())
}

/// The entry of a dead run, its levels summarised from its saved records, and judged
/// against the objectives it started with by its policy, loaded anew; when the policy cannot
/// be loaded (a component file since removed), the note says so and levels carry no goodput.
pub(super) fn rebuild(
    mut entry: RunEntry,
    records: &[Vec<RequestRecord>],
    torn_lines: usize,
    judge: &crate::runner::Rejudge,
) -> RunEntry {
    let slo = entry.result.settings.slo.clone();
    let mut unjudged = None;
    let last = records.iter().rposition(|r| !r.is_empty());
    let mut levels = Vec::new();
    for (i, plan) in entry.plans.iter().enumerate() {
        let Some(recs) = records.get(i).filter(|r| !r.is_empty()) else {
            continue;
        };
        let measured = recs.iter().filter(|r| !r.warmup).count() as u64;
        let judged = slo.as_ref().and_then(|slo| match judge.judge(slo, recs) {
            Ok(j) => Some(j),
            Err(why) => {
                unjudged = Some(why);
                None
            }
        });
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
            started_at: None,
            summary: LevelSummary::compute(recs, judged.as_ref()),
            histograms: hist.serialize(),
            requests: None,
            gpu: None,
            server: None,
            client: None,
            phase: None,
        });
    }
    let saved: usize = records.iter().map(Vec::len).sum();
    let torn = if torn_lines > 0 {
        format!(" ({torn_lines} torn journal line(s) skipped)")
    } else {
        String::new()
    };
    let slo_note = match (&slo, unjudged) {
        (Some(s), None) => format!(", judged again by the `{}` policy", s.policy),
        (Some(_), Some(why)) => format!(", not judged against its SLO: {why}"),
        (None, _) => String::new(),
    };
    entry.note = Some(format!(
        "the process writing it (pid {}) stopped before the run finished; \
         levels rebuilt from the {saved} request records saved{torn}{slo_note}",
        entry.pid
    ));
    entry.status = RunStatus::Interrupted;
    entry.result.interrupted = true;
    entry.result.finished_at = entry.updated_at.clone();
    entry.result.levels = levels;
    entry
}
