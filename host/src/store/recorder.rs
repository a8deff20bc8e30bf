//! Saving a run while it goes.
//!
//! The engine sends each record as it completes ([`RecordSink`]); a writer
//! task gathers them and writes one sled batch per [`BATCH_RECORDS`] records
//! or per [`BATCH_INTERVAL`], whichever comes first, and makes them durable
//! at most once a second, at the end of each level and at exit. A killed run
//! so loses at most about a second of records, and the next open of the
//! store marks it interrupted. When the run ends, its result and the settled
//! records (client token counts are taken after each level) replace what was
//! written on the way.
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::{PlannedLevel, RunEntry, RunOrigin, RunStatus, Store, StoreError, run_id};
use crate::engine::{ProgressEvent, RecordSink};
use crate::metrics::RequestRecord;
use crate::result::{PluginRef, RunResult, SCHEMA_VERSION, ToolInfo};
use crate::runner::{RunOutput, RunSpec};

/// Records per sled batch.
pub const BATCH_RECORDS: usize = 256;
/// Longest a completed record waits before it is written.
pub const BATCH_INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two fsyncs while a level runs.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Saves one run: created before the run starts, finished after it.
pub struct Recorder {
    store: Arc<dyn Store>,
    entry: RunEntry,
    sink: Option<RecordSink>,
    task: JoinHandle<Result<u64, StoreError>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.entry.id)
            .finish()
    }
}

/// The entry of a run about to start: its settings as far as the spec
/// knows them (a discovered model and the adapter's hash come at the end).
fn draft_entry(spec: &RunSpec) -> RunEntry {
    let now = crate::result::now_rfc3339();
    RunEntry {
        id: run_id::new_run_id(),
        status: RunStatus::Running,
        origin: RunOrigin::Measured,
        pid: std::process::id(),
        updated_at: now.clone(),
        plans: spec
            .levels
            .iter()
            .map(|p| PlannedLevel {
                label: p.load.label(),
                load: p.load,
                bound: p.bound,
                warmup: p.warmup,
            })
            .collect(),
        note: None,
        result: RunResult {
            schema_version: SCHEMA_VERSION,
            tool: ToolInfo::current(),
            started_at: now.clone(),
            finished_at: now,
            interrupted: false,
            settings: spec.settings(spec.model.clone().unwrap_or_default()),
            adapter: PluginRef {
                name: spec.adapter.clone(),
                version: String::new(),
                wit_version: String::new(),
                sha256: String::new(),
                source: "not recorded: the run did not finish".to_string(),
            },
            slo_policy: None,
            levels: Vec::new(),
            recommendation: None,
            gpu: None,
            server_metrics: None,
        },
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

impl Recorder {
    /// Save the run's entry as `running` and start the writer. `events` is
    /// a subscription to the run's progress (level ends trigger a flush).
    /// Call inside a Tokio runtime.
    pub async fn start(
        store: Arc<dyn Store>,
        spec: &RunSpec,
        events: broadcast::Receiver<ProgressEvent>,
    ) -> Result<Recorder, StoreError> {
        let entry = draft_entry(spec);
        {
            let (store, entry) = (store.clone(), entry.clone());
            blocking(move || {
                store.put_entry(&entry)?;
                store.flush()
            })
            .await?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(store.clone(), entry.clone(), rx, events));
        Ok(Recorder {
            store,
            entry,
            sink: Some(RecordSink::new(tx)),
            task,
        })
    }

    pub fn id(&self) -> &str {
        &self.entry.id
    }

    /// The sink to hand to the engine (once).
    pub fn take_sink(&mut self) -> Option<RecordSink> {
        self.sink.take()
    }

    /// Write the final result and settled records, and mark the run
    /// complete or interrupted. `None`: the run could not start; its entry
    /// is removed, as nothing was measured.
    pub async fn finish(mut self, out: Option<&RunOutput>) -> Result<RunStatus, StoreError> {
        drop(self.sink.take());
        let streamed = self
            .task
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        let store = self.store.clone();
        let id = self.entry.id.clone();
        let Some(out) = out else {
            blocking(move || store.delete(&id).map(|_| ())).await?;
            return Ok(RunStatus::Interrupted);
        };
        let mut entry = self.entry;
        entry.result = out.result.clone();
        entry.updated_at = crate::result::now_rfc3339();
        entry.status = if out.result.interrupted {
            entry.note = Some(
                "stopped early (Ctrl-C): the levels cover the requests that completed".to_string(),
            );
            RunStatus::Interrupted
        } else {
            RunStatus::Complete
        };
        let status = entry.status;
        let records = out.records.clone();
        blocking(move || {
            for (i, recs) in records.iter().enumerate() {
                store.put_records(&entry.id, i, recs)?;
            }
            store.put_entry(&entry)?;
            store.flush()
        })
        .await?;
        tracing::debug!(run = %id, streamed, "run saved");
        Ok(status)
    }
}

async fn write_batch(
    store: &Arc<dyn Store>,
    entry: &mut RunEntry,
    buf: &mut Vec<(usize, RequestRecord)>,
    flush: bool,
) -> Result<u64, StoreError> {
    if buf.is_empty() && !flush {
        return Ok(0);
    }
    let batch = std::mem::take(buf);
    let n = batch.len() as u64;
    entry.updated_at = crate::result::now_rfc3339();
    let (store, entry) = (store.clone(), entry.clone());
    blocking(move || {
        let mut by_level: std::collections::BTreeMap<usize, Vec<RequestRecord>> =
            Default::default();
        for (level, mut r) in batch {
            // The server's count where it gave one; the client's count
            // replaces it when the level ends.
            r.settle_output_tokens();
            by_level.entry(level).or_default().push(r);
        }
        for (level, recs) in &by_level {
            store.put_records(&entry.id, *level, recs)?;
        }
        store.put_entry(&entry)?;
        if flush {
            store.flush()?;
        }
        Ok(n)
    })
    .await
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut entry: RunEntry,
    mut rx: mpsc::UnboundedReceiver<(usize, RequestRecord)>,
    mut events: broadcast::Receiver<ProgressEvent>,
) -> Result<u64, StoreError> {
    let mut buf: Vec<(usize, RequestRecord)> = Vec::new();
    let (mut written, mut durable) = (0u64, 0u64);
    let mut last_flush = Instant::now();
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events_open = true;
    loop {
        let mut level_end = false;
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => {
                    buf.push(m);
                    if buf.len() < BATCH_RECORDS {
                        continue;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {}
            ev = events.recv(), if events_open => match ev {
                Ok(ProgressEvent::LevelFinished(_)) => {
                    // Every record of the level was sent before this event.
                    while let Ok(m) = rx.try_recv() {
                        buf.push(m);
                    }
                    level_end = true;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    events_open = false;
                    continue;
                }
            },
        }
        let pending = written + buf.len() as u64 > durable;
        let flush = level_end || (pending && last_flush.elapsed() >= FLUSH_INTERVAL);
        if buf.is_empty() && !flush {
            continue;
        }
        written += write_batch(&store, &mut entry, &mut buf, flush).await?;
        if flush {
            last_flush = Instant::now();
            if written > durable {
                durable = written;
                tracing::info!(run = %entry.id, saved = durable, "records saved");
            }
        }
    }
    written += write_batch(&store, &mut entry, &mut buf, true).await?;
    if written > durable {
        tracing::info!(run = %entry.id, saved = written, "records saved");
    }
    Ok(written)
}

/// `run`'s start: open the store in `data_dir` (or the default) and start
/// saving; says on stderr under which ID.
pub async fn begin(
    data_dir: Option<&std::path::Path>,
    spec: &RunSpec,
    events: broadcast::Receiver<ProgressEvent>,
) -> Result<Recorder, StoreError> {
    let dir = super::data_dir_or_default(data_dir)?;
    let store = {
        let dir = dir.clone();
        blocking(move || super::open(&dir)).await?
    };
    let recorder = Recorder::start(Arc::new(store), spec, events).await?;
    eprintln!("saving as run {} in {}", recorder.id(), dir.display());
    Ok(recorder)
}

/// `run`'s end: save the outcome. Returns the line to print, or None when
/// there was nothing to save or saving failed (said on stderr).
pub async fn end(recorder: Recorder, out: Option<&RunOutput>) -> Option<String> {
    let id = recorder.id().to_string();
    let measured = out.is_some();
    match recorder.finish(out).await {
        Ok(status) if measured => Some(format!(
            "run saved as {id} ({}): llm-loadtest show {id}",
            status.name()
        )),
        Ok(_) => None,
        Err(e) => {
            eprintln!("error: the run could not be saved: {e}");
            None
        }
    }
}
