//! Runs submitted to the API server: a queue with a bounded number running at once, each run's
//! live progress for WebSocket clients, and the counters `/metrics` reports.
//!
//! A job runs exactly as `run` does (the same spec, engine and recorder, saved under an ID
//! chosen at submission, so a client can follow it before it starts). Its state is kept in
//! memory while the server lives; the store holds everything that outlives it. Each job's
//! progress goes out as JSON frames on a broadcast channel; the state a late client needs
//! first (status, the levels finished, the latest tick) is updated under the same lock the
//! frame is sent under, so a client that takes the snapshot and subscribes in one step misses
//! no frame and sees none twice.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::engine::progress::{ProgressEvent, Snapshot};
use crate::plugin::Runtime;
use crate::recommend::search;
use crate::result::RunResult;
use crate::runner::{self, RunSpec};
use crate::store::recorder::Recorder;
use crate::store::{self, run_id};

/// Where a submitted run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    /// Waiting for one of the server's run slots.
    Queued,
    Running,
    Complete,
    /// It could not run: no plugin, a refused request shape, a store that cannot be written.
    Failed,
    /// Stopped by a cancel request; what it measured is saved (as interrupted in the store).
    Cancelled,
    /// Stopped early for another reason: the server's run-time limit, or a level that could
    /// not finish.
    Interrupted,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Complete,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Interrupted,
    ];

    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Complete => "complete",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
        }
    }
}

/// What a client sees of a job: also the first WebSocket frame.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobView {
    pub id: String,
    /// `run`, or `recommend` (a search: each probe a level, their number not known ahead).
    pub work: &'static str,
    pub status: JobStatus,
    /// The key that submitted it (its public ID).
    pub submitted_by: String,
    pub submitted_at: String,
    /// Levels in the run (0 for a search), and the one running (0-based) once started.
    pub levels: usize,
    pub level_index: Option<usize>,
    /// The latest view of the running level.
    pub current: Option<Snapshot>,
    /// Each finished level's last view.
    pub finished: Vec<Snapshot>,
    /// Why it failed or stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One job: its state and its frames.
pub struct Job {
    state: Mutex<State>,
    frames: broadcast::Sender<String>,
    cancel: CancellationToken,
}

struct State {
    view: JobView,
    /// The last frame, once the job has ended: a client that comes later still gets it.
    finished: Option<String>,
}

/// A WebSocket frame: the job as it stands, or its end (progress frames: [`progress_frame`]).
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Frame<'a> {
    Snapshot(&'a JobView),
    Finished {
        id: &'a str,
        status: JobStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a RunResult>,
    },
}

/// A progress event as a frame: `{"event": "progress", "id": ..., "kind": "tick", ...}` with
/// the event's own fields (its `event` tag renamed `kind`).
fn progress_frame(id: &str, event: &ProgressEvent) -> String {
    let mut v = serde_json::to_value(event).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        if let Some(kind) = o.remove("event") {
            o.insert("kind".into(), kind);
        }
        o.insert("event".into(), "progress".into());
        o.insert("id".into(), id.into());
    }
    v.to_string()
}

fn frame(f: &Frame<'_>) -> String {
    serde_json::to_string(f).unwrap_or_else(|e| format!(r#"{{"event":"error","reason":"{e}"}}"#))
}

/// Frames a slow client may fall behind by before it is sent a fresh snapshot instead.
const FRAME_BACKLOG: usize = 256;

/// Ended jobs kept in memory (status, last frame); older ones are answered from the store.
const KEEP_ENDED: usize = 256;

impl Job {
    fn new(id: &str, work: &'static str, submitted_by: &str, levels: usize) -> Job {
        let (frames, _) = broadcast::channel(FRAME_BACKLOG);
        Job {
            state: Mutex::new(State {
                view: JobView {
                    id: id.to_string(),
                    work,
                    status: JobStatus::Queued,
                    submitted_by: submitted_by.to_string(),
                    submitted_at: crate::result::now_rfc3339(),
                    levels,
                    level_index: None,
                    current: None,
                    finished: Vec::new(),
                    reason: None,
                },
                finished: None,
            }),
            frames,
            cancel: CancellationToken::new(),
        }
    }

    /// The frames a client gets first (the job as it stands, and its last frame when it
    /// has ended), and a subscription to every frame after them.
    pub fn watch(&self) -> (Vec<String>, broadcast::Receiver<String>) {
        let st = self.lock();
        let mut first = vec![frame(&Frame::Snapshot(&st.view))];
        first.extend(st.finished.clone());
        (first, self.frames.subscribe())
    }

    pub fn view(&self) -> JobView {
        self.lock().view.clone()
    }

    pub fn status(&self) -> JobStatus {
        self.lock().view.status
    }

    /// Asks the run to stop; what it measured so far is kept.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves a view still worth showing.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, event: &ProgressEvent) {
        let mut st = self.lock();
        let v = &mut st.view;
        match event {
            ProgressEvent::LevelStarted { index, .. } => {
                v.level_index = Some(*index);
                v.current = None;
            }
            ProgressEvent::Tick(s) => v.current = Some(s.clone()),
            ProgressEvent::LevelFinished(s) => {
                v.current = None;
                v.finished.push(s.clone());
            }
        }
        let _ = self.frames.send(progress_frame(&v.id, event));
    }

    fn end(&self, status: JobStatus, reason: Option<String>, result: Option<&RunResult>) {
        let mut st = self.lock();
        st.view.status = status;
        st.view.current = None;
        let text = frame(&Frame::Finished {
            id: &st.view.id,
            status,
            reason: reason.as_deref(),
            result,
        });
        st.view.reason = reason;
        st.finished = Some(text.clone());
        let _ = self.frames.send(text);
    }

    fn set_running(&self) {
        self.lock().view.status = JobStatus::Running;
    }
}

/// One client's place in a job's frames. A client too slow for the backlog is sent the job
/// as it stands instead of what it missed, and, when the job ended meanwhile, its last frame:
/// every follower ends with the `finished` frame, however far behind it fell.
pub struct Follower {
    job: Arc<Job>,
    pending: VecDeque<String>,
    frames: broadcast::Receiver<String>,
    ended: bool,
}

impl Follower {
    pub fn new(job: Arc<Job>) -> Follower {
        let (first, frames) = job.watch();
        Follower {
            job,
            pending: first.into(),
            frames,
            ended: false,
        }
    }

    /// The next frame to send, or `None` once the `finished` frame has been given.
    /// Cancel-safe: a frame is taken only when it is returned.
    pub async fn next(&mut self) -> Option<String> {
        if self.ended {
            return None;
        }
        let text = match self.pending.pop_front() {
            Some(f) => f,
            None => loop {
                match self.frames.recv().await {
                    Ok(t) => break t,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let (now, frames) = self.job.watch();
                        self.frames = frames;
                        self.pending = now.into();
                        if let Some(f) = self.pending.pop_front() {
                            break f;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
        };
        self.ended = is_finished(&text);
        Some(text)
    }
}

fn is_finished(frame: &str) -> bool {
    frame.starts_with(r#"{"event":"finished""#)
}

/// Totals since the server started, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub submitted: AtomicU64,
    pub requests_sent: AtomicU64,
    pub requests_completed: AtomicU64,
    /// Failed requests by error class.
    pub errors: Mutex<BTreeMap<&'static str, u64>>,
}

/// What a job does.
pub enum Work {
    /// A run, as `run` makes it.
    Run(Box<RunSpec>),
    /// A search, as `recommend` makes it.
    Recommend(Box<search::Plan>),
}

/// How the work ended: what it measured (saved, unless `failure` says otherwise) and why it
/// failed, when it did.
struct Ended {
    result: Option<RunResult>,
    failure: Option<String>,
}

impl Ended {
    fn failed(result: Option<RunResult>, why: String) -> Ended {
        Ended {
            result,
            failure: Some(why),
        }
    }
}

/// The server's runs.
pub struct Jobs {
    data_dir: PathBuf,
    runtime: Arc<Runtime>,
    slots: Arc<Semaphore>,
    max_run_time: Duration,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The server is stopping: runs it stops end as interrupted, not cancelled.
    stopping: std::sync::atomic::AtomicBool,
    pub counters: Counters,
}

impl Jobs {
    pub fn new(
        data_dir: PathBuf,
        runtime: Arc<Runtime>,
        max_runs: usize,
        max_run_time: Duration,
    ) -> Jobs {
        Jobs {
            data_dir,
            runtime,
            slots: Arc::new(Semaphore::new(max_runs.max(1))),
            max_run_time,
            jobs: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The plugin runtime runs load their adapters and policies from.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.map().get(id).cloned()
    }

    /// How many jobs are in each status.
    pub fn by_status(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for j in self.map().values() {
            *out.entry(j.status().name()).or_insert(0) += 1;
        }
        out
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues validated work; it starts when a slot is free. Call inside a Tokio runtime.
    pub fn submit(self: &Arc<Self>, work: Work, submitted_by: &str) -> Arc<Job> {
        let id = run_id::new_run_id();
        let (what, levels) = match &work {
            Work::Run(spec) => ("run", spec.levels.len()),
            Work::Recommend(_) => ("recommend", 0),
        };
        let job = Arc::new(Job::new(&id, what, submitted_by, levels));
        {
            let mut map = self.map();
            map.insert(id.clone(), Arc::clone(&job));
            let mut ended: Vec<(String, String)> = map
                .values()
                .map(|j| j.view())
                .filter(|v| v.status.is_final())
                .map(|v| (v.submitted_at, v.id))
                .collect();
            if ended.len() > KEEP_ENDED {
                ended.sort();
                for (_, old) in &ended[..ended.len() - KEEP_ENDED] {
                    map.remove(old);
                }
            }
        }
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        let jobs = Arc::clone(self);
        let j = Arc::clone(&job);
        let task = tokio::spawn(async move { jobs.drive(id, work, j).await });
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        job
    }

    /// Forgets a job that has ended (its run was deleted).
    pub fn forget(&self, id: &str) {
        self.map().remove(id);
    }

    /// Stops every job: queued ones never start, running ones stop and are saved as
    /// interrupted.
    pub fn cancel_all(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        for job in self.map().values() {
            job.cancel();
        }
    }

    /// Waits for every job to end and be saved.
    pub async fn wait(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn drive(self: Arc<Self>, id: String, work: Work, job: Arc<Job>) {
        let permit = tokio::select! {
            p = Arc::clone(&self.slots).acquire_owned() => p,
            () = job.cancel.cancelled() => {
                let (status, reason) = if self.stopping.load(Ordering::Relaxed) {
                    (JobStatus::Interrupted, "the server stopped before it started")
                } else {
                    (JobStatus::Cancelled, "cancelled before it started")
                };
                job.end(status, Some(reason.into()), None);
                return;
            }
        };
        let Ok(_permit) = permit else {
            job.end(
                JobStatus::Failed,
                Some("the server is shutting down".into()),
                None,
            );
            return;
        };
        job.set_running();
        let (tx, rx) = broadcast::channel(1024);
        let forward = tokio::spawn(forward(Arc::clone(&job), Arc::clone(&self), rx));
        // The work's own token: a user's cancel and the time limit both stop it, and which
        // one did decides the status.
        let stop = CancellationToken::new();
        let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watchdog = {
            let (stop, user, timed_out) = (stop.clone(), job.cancel.clone(), timed_out.clone());
            let limit = self.max_run_time;
            tokio::spawn(async move {
                tokio::select! {
                    () = user.cancelled() => {}
                    () = tokio::time::sleep(limit) => timed_out.store(true, Ordering::Relaxed),
                }
                stop.cancel();
            })
        };
        let ended = match work {
            Work::Run(spec) => self.run(id, &spec, tx, stop).await,
            Work::Recommend(plan) => self.recommend(id, &plan, tx, stop).await,
        };
        watchdog.abort();
        let _ = forward.await;
        if let Some(r) = &ended.result {
            self.count(r);
        }
        let (status, reason) = if let Some(why) = ended.failure {
            (JobStatus::Failed, Some(why))
        } else if self.stopping.load(Ordering::Relaxed) {
            (
                JobStatus::Interrupted,
                Some("the server stopped; what it measured is saved".into()),
            )
        } else if job.cancel.is_cancelled() {
            (
                JobStatus::Cancelled,
                Some("cancelled; what it measured is saved".into()),
            )
        } else if timed_out.load(Ordering::Relaxed) {
            (
                JobStatus::Interrupted,
                Some(format!(
                    "stopped at this server's run-time limit of {}",
                    humantime::format_duration(self.max_run_time)
                )),
            )
        } else if ended.result.as_ref().is_some_and(|r| r.interrupted) {
            (JobStatus::Interrupted, None)
        } else {
            (JobStatus::Complete, None)
        };
        // The last frame stays in memory for late clients: the records are left out of it
        // (`result/{id}?records=true` has them).
        let slim = ended.result.map(|mut r| {
            for l in &mut r.levels {
                l.requests = None;
            }
            r
        });
        job.end(status, reason, slim.as_ref());
    }

    /// A run, exactly as `run` makes it: journaled as it goes, saved at its end.
    async fn run(
        &self,
        id: String,
        spec: &RunSpec,
        tx: broadcast::Sender<ProgressEvent>,
        stop: CancellationToken,
    ) -> Ended {
        let mut recorder = match Recorder::start_as(&self.data_dir, id, spec, tx.subscribe()).await
        {
            Ok(r) => r,
            Err(e) => return Ended::failed(None, format!("cannot save the run: {e}")),
        };
        let sink = recorder.take_sink();
        let out = runner::execute_with_sink(spec, &self.runtime, tx, stop, sink).await;
        let saved = recorder.finish(out.as_ref().ok()).await;
        match (out, saved) {
            (Err(e), _) => Ended::failed(None, e.to_string()),
            (Ok(o), Err(e)) => Ended::failed(
                Some(o.result),
                format!("measured, but could not be saved: {e}"),
            ),
            (Ok(o), Ok(_)) => Ended {
                result: Some(o.result),
                failure: None,
            },
        }
    }

    /// A `recommend` search: its probes go out as the job's levels, and all of them are
    /// saved at its end as one run carrying the recommendation.
    async fn recommend(
        &self,
        id: String,
        plan: &search::Plan,
        tx: broadcast::Sender<ProgressEvent>,
        stop: CancellationToken,
    ) -> Ended {
        let answered = match search::search(plan, &self.runtime, stop, &tx, |_, _| {}).await {
            Ok(a) => a,
            Err(e) => return Ended::failed(None, format!("the recommendation policy: {e}")),
        };
        let failures = answered.failures();
        let failure = (!failures.is_empty())
            .then(|| failures.join("; "))
            .or_else(|| {
                answered
                    .recommendation
                    .is_none()
                    .then(|| "no probe was decided within the time budget".to_string())
            });
        let Some((result, records)) = answered.merged_run() else {
            return Ended {
                result: None,
                failure: failure.or_else(|| Some("no probe ran".into())),
            };
        };
        let saved = {
            let result = result.clone();
            store::with_store(&self.data_dir, move |s| {
                store::save_result_as(s, &id, result, Some(records), store::RunOrigin::Measured)
            })
            .await
        };
        match saved {
            Ok(()) => Ended {
                result: Some(result),
                failure,
            },
            Err(e) => Ended::failed(
                Some(result),
                format!("measured, but could not be saved: {e}"),
            ),
        }
    }

    fn count(&self, result: &RunResult) {
        let mut errors = self
            .counters
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for l in &result.levels {
            self.counters
                .requests_completed
                .fetch_add(l.summary.completed, Ordering::Relaxed);
            for (class, n) in &l.summary.errors {
                *errors.entry(class.name()).or_insert(0) += n.count;
            }
        }
    }
}

/// Relays a run's progress to its job, counting requests as they are sent.
async fn forward(job: Arc<Job>, jobs: Arc<Jobs>, mut rx: broadcast::Receiver<ProgressEvent>) {
    let mut sent_in_level = 0;
    loop {
        match rx.recv().await {
            Ok(event) => {
                if let ProgressEvent::Tick(s) | ProgressEvent::LevelFinished(s) = &event {
                    let new = s.sent.saturating_sub(sent_in_level);
                    jobs.counters
                        .requests_sent
                        .fetch_add(new, Ordering::Relaxed);
                    sent_in_level = s.sent;
                }
                if matches!(event, ProgressEvent::LevelStarted { .. }) {
                    sent_in_level = 0;
                }
                job.apply(&event);
            }
            // Ticks are views, not increments: a skipped one loses nothing the next one
            // does not carry.
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(f: &str) -> String {
        serde_json::from_str::<serde_json::Value>(f).unwrap()["event"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The frame ready now: every frame here is sent before it is asked for, so a follower
    /// that would wait is a failure, not a hang.
    fn next(f: &mut Follower) -> Option<String> {
        use futures::FutureExt as _;
        f.next()
            .now_or_never()
            .expect("a frame or the end, without waiting")
    }

    fn started(index: usize) -> ProgressEvent {
        ProgressEvent::LevelStarted {
            level: "c=1".into(),
            index,
            of: 1,
            planned: None,
        }
    }

    #[test]
    fn a_follower_that_fell_behind_a_job_that_ended_still_gets_the_end() {
        let job = Arc::new(Job::new("r1", "run", "k1", 1));
        let mut f = Follower::new(Arc::clone(&job));
        assert_eq!(event(&next(&mut f).unwrap()), "snapshot");
        for i in 0..FRAME_BACKLOG + 10 {
            job.apply(&started(i));
        }
        job.end(JobStatus::Complete, None, None);
        // Behind by more than the backlog: the job as it stands, then its end, then nothing.
        assert_eq!(event(&next(&mut f).unwrap()), "snapshot");
        assert_eq!(event(&next(&mut f).unwrap()), "finished");
        assert!(next(&mut f).is_none());
    }

    #[test]
    fn a_follower_in_step_gets_every_frame_once_and_then_the_end() {
        let job = Arc::new(Job::new("r2", "run", "k1", 1));
        let mut f = Follower::new(Arc::clone(&job));
        job.apply(&started(0));
        job.end(JobStatus::Cancelled, Some("cancelled".into()), None);
        let got: Vec<String> = [next(&mut f), next(&mut f), next(&mut f)]
            .into_iter()
            .map(|x| event(&x.unwrap()))
            .collect();
        assert_eq!(got, ["snapshot", "progress", "finished"]);
        assert!(next(&mut f).is_none());
        // A client that comes after the end gets the job and its end at once.
        let mut late = Follower::new(job);
        assert_eq!(event(&next(&mut late).unwrap()), "snapshot");
        assert_eq!(event(&next(&mut late).unwrap()), "finished");
        assert!(next(&mut late).is_none());
    }
}
