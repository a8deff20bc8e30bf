//! Saved runs: every run's settings, environment, level summaries,
//! histograms and per-request records, under a data directory.
//!
//! The on-disk engine (sled, DESIGN §11) sits behind the small [`Store`]
//! trait; everything above it (listing, filtering, ID prefixes, recovering
//! runs whose process died) is written once here against the trait.
//!
//! Two versions guard against misreading: the store's layout version (a key
//! in the `meta` tree, checked on open) and the result schema version inside
//! every stored run (checked on every read).
pub mod journal;
pub mod recorder;
mod recover;
mod row;
pub mod run_id;
mod sled_store;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::metrics::RequestRecord;
use crate::plan::{Bound, Load, Warmup};
use crate::result::{RunResult, SCHEMA_VERSION};

pub use row::RunRow;
pub use sled_store::SledStore;

/// Bump on any change to the store's layout (trees, keys, entry shape).
pub const STORE_SCHEMA_VERSION: u32 = 1;

/// Where runs are kept unless `--data-dir` or `LLM_LOADTEST_DATA_DIR` says.
pub fn default_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("llm-loadtest"))
}

/// The data directory to use: the flag (or its env variable), else the default.
pub fn data_dir_or_default(flag: Option<&Path>) -> Result<PathBuf, StoreError> {
    match flag {
        Some(p) => Ok(p.to_path_buf()),
        None => default_data_dir().ok_or(StoreError::NoDataDir),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no data directory: pass --data-dir or set LLM_LOADTEST_DATA_DIR")]
    NoDataDir,
    #[error("cannot open the store in {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "the store in {path} stayed locked by another llm-loadtest process for {} s (one \
         moving a very large run in?); try again, or pass another --data-dir",
        sled_store::LOCK_WAIT.as_secs()
    )]
    Locked { path: PathBuf },
    #[error(
        "the store in {path} has layout version {found}; this llm-loadtest reads version \
         {supported}. Use a matching release to read it, or pass another --data-dir"
    )]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path} holds data but no store version: it is not an llm-loadtest store")]
    NotAStore { path: PathBuf },
    #[error(
        "stored run {id} has result schema version {found}; this llm-loadtest reads version \
         {supported}. Use a matching release to read it"
    )]
    RunVersion {
        id: String,
        found: u64,
        supported: u32,
    },
    #[error("stored run {id} is damaged: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("no stored run matches `{0}` (see `llm-loadtest history`)")]
    NotFound(String),
    #[error("`{prefix}` matches several runs: {}", matches.join(", "))]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("store I/O failed: {0}")]
    Io(#[from] sled::Error),
    #[error("run journal {path}: {reason}")]
    Journal { path: PathBuf, reason: String },
    #[error("a store task failed: {0}")]
    Task(String),
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Its process is (or was, until it died) still measuring.
    Running,
    Complete,
    /// Stopped early: Ctrl-C, or its process died (found on the next open).
    Interrupted,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Where a stored run came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RunOrigin {
    /// Measured by this tool.
    Measured,
    /// Read from a file by `import`.
    Imported { file: String, format: String },
}

/// A level as planned, known before it runs (so a killed run can still be
/// summarised from its records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedLevel {
    pub label: String,
    pub load: Load,
    pub bound: Bound,
    pub warmup: Warmup,
}

impl From<&crate::result::LevelResult> for PlannedLevel {
    /// The plan a level that ran followed.
    fn from(l: &crate::result::LevelResult) -> Self {
        PlannedLevel {
            label: l.label.clone(),
            load: l.load,
            bound: l.bound,
            warmup: l.warmup,
        }
    }
}

/// What the store keeps about a run beside its records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    pub id: String,
    pub status: RunStatus,
    pub origin: RunOrigin,
    /// The process that wrote it.
    pub pid: u32,
    /// RFC 3339: the last time records were written.
    pub updated_at: String,
    pub plans: Vec<PlannedLevel>,
    /// Why the run is interrupted, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// While running: the settings, no levels yet. Records are never kept
    /// here (`requests` is always None): they live beside it, one key each.
    pub result: RunResult,
}

/// A run with its records, one list per level (warm-up included).
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub entry: RunEntry,
    pub records: Vec<Vec<RequestRecord>>,
}

impl StoredRun {
    /// The result with every level's records inside (`requests`), as the
    /// native JSON export writes it.
    pub fn result_with_records(&self) -> RunResult {
        let mut r = self.entry.result.clone();
        for (i, level) in r.levels.iter_mut().enumerate() {
            level.requests = Some(self.records.get(i).cloned().unwrap_or_default());
        }
        r
    }

    /// Records of level `i`, if any were stored.
    pub fn level_records(&self, i: usize) -> &[RequestRecord] {
        self.records.get(i).map_or(&[], Vec::as_slice)
    }
}

/// The storage engine: entries and records by run ID. Everything else is
/// built on these few operations.
pub trait Store: Send + Sync {
    /// Insert or replace a run's entry.
    fn put_entry(&self, entry: &RunEntry) -> Result<(), StoreError>;
    /// Insert or replace records of one level (keyed by their `index`), in batches of
    /// bounded size: a failure part-way leaves some written, which the run's entry, written
    /// after them, does not yet count.
    fn put_records(
        &self,
        id: &str,
        level: usize,
        records: &[RequestRecord],
    ) -> Result<(), StoreError>;
    /// Every run ID, in ascending (oldest first) order.
    fn ids(&self) -> Result<Vec<String>, StoreError>;
    /// One entry; schema-version mismatches are errors, never misreadings.
    fn entry(&self, id: &str) -> Result<Option<RunEntry>, StoreError>;
    /// A run's records, grouped by level in index order.
    fn records(&self, id: &str) -> Result<Vec<Vec<RequestRecord>>, StoreError>;
    /// Remove a run and its records; false when there was none.
    fn delete(&self, id: &str) -> Result<bool, StoreError>;
    /// Make everything written so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// The data directory the store lives in (run journals sit beside it).
    fn data_dir(&self) -> &Path;
}

/// Open (creating if needed) the store in `dir`, then mark interrupted any
/// run whose process died mid-way. Hold it only as long as the command needs it: runs in
/// progress in other processes open it too, for moments (see [`journal`]).
pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
    let store = SledStore::open(dir)?;
    recover::mark_dead_runs(&store)?;
    Ok(store)
}

/// Runs `f` on a blocking thread (store and journal work blocks on files and locks).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// Opens the store in `data_dir` for one piece of work, and closes it, so processes beside
/// this one (runs, `history`, the API server) get their turn.
pub async fn with_store<T: Send + 'static>(
    data_dir: &Path,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let dir = data_dir.to_path_buf();
    blocking(move || {
        let store = open(&dir)?;
        let out = f(&store)?;
        store.flush()?;
        Ok(out)
    })
    .await
}

/// Decode a stored entry, checking the result schema version first.
pub(crate) fn decode_entry(id: &str, bytes: &[u8]) -> Result<RunEntry, StoreError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            id: id.to_string(),
            reason: e.to_string(),
        })?;
    let found = value
        .pointer("/result/schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| StoreError::Corrupt {
            id: id.to_string(),
            reason: "no result schema version".to_string(),
        })?;
    if found != u64::from(SCHEMA_VERSION) {
        return Err(StoreError::RunVersion {
            id: id.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// Which runs `history` shows.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Case-insensitive substring of the model name.
    pub model: Option<String>,
    /// Case-insensitive substring of the server URL.
    pub server: Option<String>,
    /// Started at or after.
    pub since: Option<SystemTime>,
    /// Every one of these tags.
    pub tags: Vec<String>,
}

impl RunFilter {
    pub fn matches(&self, e: &RunEntry) -> bool {
        let has = |hay: &str, needle: &Option<String>| {
            needle
                .as_ref()
                .is_none_or(|n| hay.to_lowercase().contains(&n.to_lowercase()))
        };
        let s = &e.result.settings;
        let since_ok = self.since.is_none_or(|since| {
            humantime::parse_rfc3339_weak(&e.result.started_at).is_ok_and(|t| t >= since)
        });
        has(&s.model, &self.model)
            && has(&s.server, &self.server)
            && since_ok
            && self.tags.iter().all(|t| s.tags.contains(t))
    }
}

/// Runs matching `filter`, newest first, plus the errors of runs that
/// could not be read (other schema versions), so none is silently skipped.
pub fn list(
    store: &dyn Store,
    filter: &RunFilter,
) -> Result<(Vec<RunEntry>, Vec<StoreError>), StoreError> {
    let mut runs = Vec::new();
    let mut unreadable = Vec::new();
    for id in store.ids()?.into_iter().rev() {
        match store.entry(&id) {
            Ok(Some(e)) if filter.matches(&e) => runs.push(e),
            Ok(_) => {}
            Err(e) => unreadable.push(e),
        }
    }
    Ok((runs, unreadable))
}

/// The full ID of the one run whose ID starts with `prefix`.
pub fn resolve(store: &dyn Store, prefix: &str) -> Result<String, StoreError> {
    let prefix = prefix.trim();
    let ids = store.ids()?;
    if ids.iter().any(|i| i == prefix) {
        return Ok(prefix.to_string());
    }
    let matches: Vec<String> = ids
        .into_iter()
        .filter(|i| !prefix.is_empty() && i.starts_with(prefix))
        .collect();
    match matches.len() {
        0 => Err(StoreError::NotFound(prefix.to_string())),
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        _ => Err(StoreError::Ambiguous {
            prefix: prefix.to_string(),
            matches,
        }),
    }
}

/// A run and its records, by ID or unique ID prefix.
pub fn load(store: &dyn Store, id_or_prefix: &str) -> Result<StoredRun, StoreError> {
    let id = resolve(store, id_or_prefix)?;
    let entry = store
        .entry(&id)?
        .ok_or_else(|| StoreError::NotFound(id.clone()))?;
    let mut records = store.records(&id)?;
    // A run still going keeps its records in its journal until it ends.
    if entry.status == RunStatus::Running {
        let path = journal::path(store.data_dir(), &id);
        if let Ok(j) = journal::read(&path) {
            records = j.records;
        }
    }
    Ok(StoredRun { entry, records })
}

/// Save a finished result (an import, or a run saved after the fact) under
/// a new ID. Records inside `result` (`requests`) are moved out to their
/// own keys; `records` given separately win over them.
pub fn save_result(
    store: &dyn Store,
    result: RunResult,
    records: Option<Vec<Vec<RequestRecord>>>,
    origin: RunOrigin,
) -> Result<String, StoreError> {
    let id = run_id::new_run_id();
    save_result_as(store, &id, result, records, origin)?;
    Ok(id)
}

/// [`save_result`] under an ID chosen before (a search the API server announced).
pub fn save_result_as(
    store: &dyn Store,
    id: &str,
    mut result: RunResult,
    records: Option<Vec<Vec<RequestRecord>>>,
    origin: RunOrigin,
) -> Result<(), StoreError> {
    let id = id.to_string();
    let mut per_level: Vec<Vec<RequestRecord>> = Vec::new();
    for level in &mut result.levels {
        per_level.push(level.requests.take().unwrap_or_default());
    }
    let per_level = records.unwrap_or(per_level);
    for (i, recs) in per_level.iter().enumerate() {
        store.put_records(&id, i, recs)?;
    }
    let entry = RunEntry {
        id: id.clone(),
        status: if result.interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        },
        origin,
        pid: std::process::id(),
        updated_at: crate::result::now_rfc3339(),
        plans: result.levels.iter().map(PlannedLevel::from).collect(),
        note: None,
        result,
    };
    store.put_entry(&entry)?;
    store.flush()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
