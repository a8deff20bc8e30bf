//! Saving a run while it goes.
//!
//! The engine sends each record as it completes ([`RecordSink`]); a writer task appends them
//! to the run's journal (see [`super::journal`]) and makes them durable at most once a second,
//! at the end of each level and at exit. The store itself is opened only twice, for moments:
//! to register the run as `running` when it starts, and to move the result and its settled
//! records (client token counts are taken after each level) in when it ends. In between,
//! `history`, `show` or a second run in other processes open the store freely. A killed run
//! so loses at most about a second of records, and the next open of the store recovers it.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::journal::Writer;
use super::{
    PlannedLevel, RunEntry, RunOrigin, RunStatus, StoreError, blocking, run_id, with_store,
};
use crate::engine::{ProgressEvent, RecordSink};
use crate::metrics::RequestRecord;
use crate::result::{PluginRef, RunResult, SCHEMA_VERSION, ToolInfo};
use crate::runner::{RunOutput, RunSpec};

/// Records appended between two looks at the clock.
pub const BATCH_RECORDS: usize = 256;
/// Longest a completed record waits before it is written.
pub const BATCH_INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two fsyncs while a level runs.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Saves one run: created before the run starts, finished after it.
pub struct Recorder {
    data_dir: PathBuf,
    entry: RunEntry,
    sink: Option<RecordSink>,
    task: JoinHandle<Result<(u64, Writer), StoreError>>,
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
fn draft_entry(id: String, spec: &RunSpec) -> RunEntry {
    let now = crate::result::now_rfc3339();
    RunEntry {
        id,
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
            merge: None,
            load_series: None,
        },
    }
}

impl Recorder {
    /// Creates the run's journal, registers the run as `running` in the store in
    /// `data_dir`, and starts the writer. `events` is a subscription to the run's progress
    /// (level ends trigger an fsync). Call inside a Tokio runtime.
    pub async fn start(
        data_dir: &Path,
        spec: &RunSpec,
        events: broadcast::Receiver<ProgressEvent>,
    ) -> Result<Recorder, StoreError> {
        Self::start_as(data_dir, run_id::new_run_id(), spec, events).await
    }

    /// [`Recorder::start`] under an ID chosen before (a run the API server queued).
    pub async fn start_as(
        data_dir: &Path,
        id: String,
        spec: &RunSpec,
        events: broadcast::Receiver<ProgressEvent>,
    ) -> Result<Recorder, StoreError> {
        let entry = draft_entry(id, spec);
        // The journal first, locked: an open of the store that sees the run `running` also
        // sees that its writer lives.
        let writer = {
            let (dir, entry) = (data_dir.to_path_buf(), entry.clone());
            blocking(move || Writer::create(&dir, &entry)).await?
        };
        let registered = {
            let entry = entry.clone();
            with_store(data_dir, move |store| store.put_entry(&entry)).await
        };
        if let Err(e) = registered {
            // Not started: no journal left behind to be recovered as a run.
            let _ = blocking(move || writer.remove()).await;
            return Err(e);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(writer, entry.id.clone(), rx, events));
        Ok(Recorder {
            data_dir: data_dir.to_path_buf(),
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

    /// Moves the final result and settled records into the store, marks the run complete
    /// or interrupted, and deletes the journal. `None`: the run could not start; its entry
    /// is removed, as nothing was measured. If the store cannot be written, the journal
    /// stays, and the next open of the store recovers the run from it.
    pub async fn finish(mut self, out: Option<&RunOutput>) -> Result<RunStatus, StoreError> {
        drop(self.sink.take());
        let (streamed, writer) = self
            .task
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        let id = self.entry.id.clone();
        let Some(out) = out else {
            let gone = id.clone();
            with_store(&self.data_dir, move |store| store.delete(&gone).map(|_| ())).await?;
            blocking(move || writer.remove()).await?;
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
        let records = std::sync::Arc::clone(&out.records);
        with_store(&self.data_dir, move |store| {
            for (i, recs) in records.iter().enumerate() {
                store.put_records(&entry.id, i, recs)?;
            }
            store.put_entry(&entry)
        })
        .await?;
        blocking(move || writer.remove()).await?;
        tracing::debug!(run = %id, streamed, "run saved");
        Ok(status)
    }
}

/// Appends records to the journal as they come, fsyncing at most once a second and at each
/// level's end; gives the journal back when the sink closes.
async fn write_loop(
    mut writer: Writer,
    id: String,
    mut rx: mpsc::UnboundedReceiver<(usize, RequestRecord)>,
    mut events: broadcast::Receiver<ProgressEvent>,
) -> Result<(u64, Writer), StoreError> {
    let (mut written, mut durable) = (0u64, 0u64);
    let mut last_flush = Instant::now();
    let mut tick = tokio::time::interval(BATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events_open = true;
    let append = |writer: &mut Writer, (level, mut r): (usize, RequestRecord)| {
        // The server's count where it gave one; the client's count replaces it when the
        // run is moved into the store.
        r.settle_output_tokens();
        writer.append(level, &r)
    };
    loop {
        let mut level_end = false;
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => {
                    append(&mut writer, m)?;
                    written += 1;
                    if written % BATCH_RECORDS as u64 != 0 {
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
                        append(&mut writer, m)?;
                        written += 1;
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
        let flush = written > durable && (level_end || last_flush.elapsed() >= FLUSH_INTERVAL);
        if flush {
            writer = blocking(move || writer.sync().map(|()| writer)).await?;
            last_flush = Instant::now();
            durable = written;
            tracing::info!(run = %id, saved = durable, "records saved");
        }
    }
    writer = blocking(move || writer.sync().map(|()| writer)).await?;
    if written > durable {
        tracing::info!(run = %id, saved = written, "records saved");
    }
    Ok((written, writer))
}

/// `run`'s start: start saving in `data_dir` (or the default); says on stderr under which
/// ID.
pub async fn begin(
    data_dir: Option<&std::path::Path>,
    spec: &RunSpec,
    events: broadcast::Receiver<ProgressEvent>,
) -> Result<Recorder, StoreError> {
    let dir = super::data_dir_or_default(data_dir)?;
    let recorder = Recorder::start(&dir, spec, events).await?;
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
