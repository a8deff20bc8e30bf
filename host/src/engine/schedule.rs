//! Load shapes: closed-loop concurrency levels and open-loop arrival rates.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::plan::arrivals::{arrival_offsets, arrivals_within};
use crate::plan::{Bound, LevelPlan, Load, Profile, Warmup};

use super::RunContext;
use super::progress::Live;
use super::request::{RequestContext, execute};
use crate::metrics::RequestRecord;

/// What a level produced.
#[derive(Debug)]
pub struct LevelRun {
    pub records: Vec<RequestRecord>,
    /// Cancelled before it finished; in-flight requests were dropped.
    pub interrupted: bool,
    pub wall_s: f64,
    /// When the level started, for matching it with samples taken on other clocks' threads.
    pub started: Instant,
    /// When the level started on the wall clock (what shards on other machines agree on).
    pub started_wall: std::time::SystemTime,
    /// How loaded the client itself was.
    pub client: Option<super::client_load::ClientLoad>,
}

impl LevelRun {
    /// A level that sent nothing (cancelled before its first request).
    pub fn empty(started: Instant, started_wall: std::time::SystemTime) -> LevelRun {
        LevelRun {
            records: Vec::new(),
            interrupted: true,
            wall_s: 0.0,
            started,
            started_wall,
            client: None,
        }
    }
}

fn is_warmup(warmup: Warmup, index: u64, intended_s: f64) -> bool {
    match warmup {
        Warmup::None => false,
        Warmup::Requests(n) => index < n,
        Warmup::Seconds(s) => intended_s < s,
    }
}

fn warmup_seconds(w: Warmup) -> f64 {
    match w {
        Warmup::Seconds(s) => s,
        _ => 0.0,
    }
}

fn warmup_requests(w: Warmup) -> u64 {
    match w {
        Warmup::Requests(n) => n,
        _ => 0,
    }
}

/// Whether the reads since `before` were timed by the kernel (all but 1 % or fewer).
pub(super) fn stamped_since(run: &RunContext, before: (u64, u64)) -> bool {
    let (kernel, clock) = run.pool.read_counts();
    let (kernel, clock) = (kernel - before.0, clock - before.1);
    kernel > 0 && clock * 100 <= kernel
}

/// Run one level to its bound, or until `cancel` fires.
pub async fn run_level(
    run: Arc<RunContext>,
    plan: LevelPlan,
    live: Arc<Live>,
    cancel: CancellationToken,
) -> LevelRun {
    let level_start = Instant::now();
    let started_wall = std::time::SystemTime::now();
    let watch = super::client_load::Watch::start();
    let reads_before = run.pool.read_counts();
    live.start_level(plan.load.label(), level_start);
    let records = match plan.load {
        Load::Concurrency { concurrency } => {
            closed_loop(&run, plan, concurrency, level_start, &live, &cancel).await
        }
        // A stage run alone: the staged engine with one stage (run_levels runs a staged run's
        // stages together).
        Load::Stage { .. } => {
            let profile = Profile::of(std::slice::from_ref(&plan))
                .expect("a stage level is a profile of one stage");
            return super::stages::run(&run, &[plan], &profile, &live, &cancel)
                .await
                .pop()
                .unwrap_or_else(|| LevelRun::empty(level_start, started_wall));
        }
        Load::Rate {
            rate,
            burstiness,
            max_concurrency,
        } => {
            open_loop(
                &run,
                plan,
                (rate, burstiness, max_concurrency),
                level_start,
                &live,
                &cancel,
            )
            .await
        }
    };
    let mut records = records;
    records.sort_by_key(|r| r.index);
    LevelRun {
        records,
        interrupted: cancel.is_cancelled(),
        wall_s: level_start.elapsed().as_secs_f64(),
        started: level_start,
        started_wall,
        client: Some(watch.finish(stamped_since(&run, reads_before)).await),
    }
}

/// One request to send: which, when it was due, and the level its record belongs to.
pub(super) struct Dispatch {
    /// Its index in the level (or the staged run), which picks its prompt.
    pub index: u64,
    /// When it was due to be sent.
    pub intended: Instant,
    pub warmup: bool,
    /// The start its record's times count from.
    pub level_start: Instant,
    /// The level (stage) its record is sent to the sink under; `None`: the current level's.
    pub level: Option<usize>,
}

pub(super) async fn one(
    run: &RunContext,
    live: &Live,
    d: Dispatch,
    cancel: &CancellationToken,
) -> Option<RequestRecord> {
    let ctx = RequestContext {
        pool: &run.pool,
        served_model: &run.served_model,
        target: &run.target,
        adapter: &run.adapter,
        level_start: d.level_start,
        timeout: run.timeout,
        metric_mode: run.metric_mode,
    };
    let item = &run.requests[(d.index as usize) % run.requests.len()];
    let record = RequestRecord {
        index: d.index,
        warmup: d.warmup,
        intended_start_s: (d.intended - d.level_start).as_secs_f64(),
        input_tokens: item.input_tokens,
        ..Default::default()
    };
    live.request_started();
    let outcome = tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        r = execute(&ctx, &item.request, record) => Some(r),
    };
    match outcome {
        Some(mut r) => {
            r.queue_ms = (r.send_s - r.intended_start_s).max(0.0) * 1e3;
            live.request_finished(&r);
            if let Some(sink) = &run.record_sink {
                sink.send(d.level, &r);
            }
            Some(r)
        }
        None => {
            live.request_abandoned();
            None
        }
    }
}

async fn closed_loop(
    run: &Arc<RunContext>,
    plan: LevelPlan,
    concurrency: u32,
    level_start: Instant,
    live: &Arc<Live>,
    cancel: &CancellationToken,
) -> Vec<RequestRecord> {
    let next = Arc::new(AtomicU64::new(0));
    let measured = Arc::new(AtomicU64::new(0));
    let warm_s = warmup_seconds(plan.warmup);
    let shard = run.shard;
    // The measured requests that are this shard's: with warm-up by count, exactly its indices
    // among the level's measured ones; with warm-up by time (whose count no one knows ahead),
    // its share of the count.
    let quota = match (plan.bound, plan.warmup) {
        (Bound::Requests(n), Warmup::Seconds(_)) => shard.share(n),
        (Bound::Requests(n), w) => shard.owned_in(warmup_requests(w), warmup_requests(w) + n),
        (Bound::Seconds(_), _) => u64::MAX,
    };
    let mut tasks = tokio::task::JoinSet::new();
    // `--ramp-up` is a stage from 0 to the level's clients, then a hold: client k starts where
    // the stage's target passes k, by the rule a staged run follows (plan::stages).
    let ramp = Profile::ramp(concurrency, run.ramp);
    for k in 0..shard.share(u64::from(concurrency)) {
        let (run, live, cancel) = (run.clone(), live.clone(), cancel.clone());
        let (next, measured) = (next.clone(), measured.clone());
        // Each client starts where it would on one machine: its place among all the level's.
        let client = u32::try_from(shard.global(k)).unwrap_or(u32::MAX);
        let offset = ramp.active(client).first().map_or(0.0, |(from, _)| *from);
        let start_at = level_start + Duration::from_secs_f64(offset);
        tasks.spawn(async move {
            let mut mine = Vec::new();
            tokio::select! {
                _ = cancel.cancelled() => return mine,
                _ = tokio::time::sleep_until(start_at.into()) => {}
            }
            while !cancel.is_cancelled() {
                let now = Instant::now();
                let elapsed = (now - level_start).as_secs_f64();
                if let Bound::Seconds(d) = plan.bound
                    && elapsed >= warm_s + d
                {
                    break;
                }
                let index = shard.global(next.fetch_add(1, Ordering::Relaxed));
                let warmup = is_warmup(plan.warmup, index, elapsed);
                if !warmup && measured.fetch_add(1, Ordering::Relaxed) >= quota {
                    break;
                }
                let d = Dispatch {
                    index,
                    intended: now,
                    warmup,
                    level_start,
                    level: None,
                };
                match one(&run, &live, d, &cancel).await {
                    Some(r) => mine.push(r),
                    None => break,
                }
            }
            mine
        });
    }
    joined(tasks).await
}

async fn open_loop(
    run: &Arc<RunContext>,
    plan: LevelPlan,
    (rate, burstiness, max_concurrency): (f64, f64, Option<u32>),
    level_start: Instant,
    live: &Arc<Live>,
    cancel: &CancellationToken,
) -> Vec<RequestRecord> {
    let warm_n = warmup_requests(plan.warmup);
    let warm_s = warmup_seconds(plan.warmup);
    let offsets = match plan.bound {
        Bound::Requests(n) if warm_s > 0.0 => {
            // Warm-up by time, then n measured requests.
            let warm = arrivals_within(rate, burstiness, warm_s, plan.seed);
            arrival_offsets(rate, burstiness, warm.len() + n as usize, plan.seed)
        }
        Bound::Requests(n) => arrival_offsets(rate, burstiness, (warm_n + n) as usize, plan.seed),
        Bound::Seconds(d) => {
            let mut v = arrivals_within(rate, burstiness, warm_s + d, plan.seed);
            if (v.len() as u64) < warm_n {
                v = arrival_offsets(rate, burstiness, warm_n as usize, plan.seed);
            }
            v
        }
    };
    let shard = run.shard;
    // The whole level's schedule, of which this shard sends its arrivals: the union of the
    // shards' is the single-machine schedule, arrival for arrival.
    let due = offsets
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.owns(*i as u64))
        .map(|(i, off)| {
            let d = Dispatch {
                index: i as u64,
                intended: level_start + Duration::from_secs_f64(*off),
                warmup: is_warmup(plan.warmup, i as u64, *off),
                level_start,
                level: None,
            };
            ((), d)
        });
    send_when_due(run, due, max_concurrency, live, cancel)
        .await
        .into_iter()
        .map(|((), r)| r)
        .collect()
}

/// Sends each of `due` (tagged with a `T` its record is returned with) when it is due, each in
/// a task of its own so a slow answer never delays the next send; under `max_concurrency` a
/// request due while the limit is reached waits for a slot (its queue time). Stops sending
/// when `cancel` fires.
pub(super) async fn send_when_due<T: Send + 'static>(
    run: &Arc<RunContext>,
    due: impl Iterator<Item = (T, Dispatch)>,
    max_concurrency: Option<u32>,
    live: &Arc<Live>,
    cancel: &CancellationToken,
) -> Vec<(T, RequestRecord)> {
    // The shard's part of the in-flight limit (the CLI refuses a limit below the shard count).
    let limit = max_concurrency
        .map(|m| Arc::new(Semaphore::new(run.shard.share(u64::from(m)).max(1) as usize)));
    let mut tasks = tokio::task::JoinSet::new();
    for (tag, d) in due {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(d.intended.into()) => {}
        }
        let permit = match &limit {
            Some(sem) => tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                p = sem.clone().acquire_owned() => p.ok(),
            },
            None => None,
        };
        let (run, live, cancel) = (run.clone(), live.clone(), cancel.clone());
        tasks.spawn(async move {
            let r = one(&run, &live, d, &cancel).await;
            drop(permit);
            r.map(|r| vec![(tag, r)]).unwrap_or_default()
        });
    }
    joined(tasks).await
}

/// Every task's records, in the order the tasks ended (a task that panicked gave none).
pub(super) async fn joined<T: 'static>(mut tasks: tokio::task::JoinSet<Vec<T>>) -> Vec<T> {
    let mut all = Vec::new();
    while let Some(res) = tasks.join_next().await {
        if let Ok(mut v) = res {
            all.append(&mut v);
        }
    }
    all
}
