//! Load shapes: closed-loop concurrency levels and open-loop arrival rates.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, Gamma};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::plan::{Bound, LevelPlan, Load, Warmup};

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

/// Gamma-distributed arrival offsets (seconds from the level's start).
/// The whole schedule is computed ahead, as absolute times, so a late
/// dispatch never shifts the requests after it.
pub fn arrival_offsets(rate: f64, burstiness: f64, count: usize, seed: u64) -> Vec<f64> {
    if rate.is_infinite() || count == 0 {
        return vec![0.0; count];
    }
    let gamma = Gamma::new(burstiness, 1.0 / (rate * burstiness))
        .expect("rate and burstiness are validated to be positive and finite");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = 0.0;
    (0..count)
        .map(|_| {
            t += gamma.sample(&mut rng);
            t
        })
        .collect()
}

/// Arrival offsets up to `horizon` seconds.
fn arrivals_within(rate: f64, burstiness: f64, horizon: f64, seed: u64) -> Vec<f64> {
    // Draw in chunks until past the horizon; the draws are the same as one
    // long schedule for the same seed, whatever the horizon.
    let mut n = ((rate * horizon * 1.2) as usize).max(16);
    loop {
        let all = arrival_offsets(rate, burstiness, n, seed);
        if all.last().is_some_and(|&t| t > horizon) {
            return all.into_iter().take_while(|&t| t <= horizon).collect();
        }
        n *= 2;
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
fn stamped_since(run: &RunContext, before: (u64, u64)) -> bool {
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

async fn one(
    run: &RunContext,
    live: &Live,
    index: u64,
    intended: Instant,
    warmup: bool,
    level_start: Instant,
    cancel: &CancellationToken,
) -> Option<RequestRecord> {
    let ctx = RequestContext {
        pool: &run.pool,
        served_model: &run.served_model,
        target: &run.target,
        adapter: &run.adapter,
        level_start,
        timeout: run.timeout,
        metric_mode: run.metric_mode,
    };
    let item = &run.requests[(index as usize) % run.requests.len()];
    let record = RequestRecord {
        index,
        warmup,
        intended_start_s: (intended - level_start).as_secs_f64(),
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
                sink.send(&r);
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
    for k in 0..shard.share(u64::from(concurrency)) {
        let (run, live, cancel) = (run.clone(), live.clone(), cancel.clone());
        let (next, measured) = (next.clone(), measured.clone());
        // Each client starts where it would on one machine: its place among all the level's.
        let client = shard.global(k) as f64;
        let start_at = level_start + run.ramp.mul_f64(client / f64::from(concurrency));
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
                match one(&run, &live, index, now, warmup, level_start, &cancel).await {
                    Some(r) => mine.push(r),
                    None => break,
                }
            }
            mine
        });
    }
    let mut all = Vec::new();
    while let Some(res) = tasks.join_next().await {
        if let Ok(mut v) = res {
            all.append(&mut v);
        }
    }
    all
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
    // The shard's part of the in-flight limit (the CLI refuses a limit below the shard count).
    let limit = max_concurrency
        .map(|m| Arc::new(Semaphore::new(shard.share(u64::from(m)).max(1) as usize)));
    let mut tasks = tokio::task::JoinSet::new();
    // The whole level's schedule, of which this shard sends its arrivals: the union of the
    // shards' is the single-machine schedule, arrival for arrival.
    for (i, off) in offsets.iter().enumerate() {
        if !shard.owns(i as u64) {
            continue;
        }
        let intended = level_start + Duration::from_secs_f64(*off);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(intended.into()) => {}
        }
        let permit = match &limit {
            Some(sem) => tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                p = sem.clone().acquire_owned() => p.ok(),
            },
            None => None,
        };
        let warmup = is_warmup(plan.warmup, i as u64, *off);
        let (run, live, cancel) = (run.clone(), live.clone(), cancel.clone());
        tasks.spawn(async move {
            let r = one(
                &run,
                &live,
                i as u64,
                intended,
                warmup,
                level_start,
                &cancel,
            )
            .await;
            drop(permit);
            r
        });
    }
    let mut all = Vec::new();
    while let Some(res) = tasks.join_next().await {
        if let Ok(Some(r)) = res {
            all.push(r);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_and_rate_statistics() {
        let a = arrival_offsets(20.0, 1.0, 20_000, 7);
        let b = arrival_offsets(20.0, 1.0, 20_000, 7);
        assert_eq!(a, b);
        assert_ne!(a, arrival_offsets(20.0, 1.0, 20_000, 8));
        let gaps: Vec<f64> = std::iter::once(a[0])
            .chain(a.windows(2).map(|w| w[1] - w[0]))
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        // Poisson: mean gap 1/rate, coefficient of variation 1. With 20,000
        // gaps the standard error of each is under 1 %: 5 % cannot flake.
        assert!(
            (1.0 / mean - 20.0).abs() / 20.0 < 0.05,
            "rate {}",
            1.0 / mean
        );
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
        // Gamma shape B gives CV 1/sqrt(B).
        let c = arrival_offsets(20.0, 4.0, 20_000, 7);
        let gaps: Vec<f64> = c.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 0.5).abs() < 0.05, "cv {}", sd / mean);
    }

    #[test]
    fn horizon_schedules_are_prefixes_of_the_long_one() {
        let long = arrival_offsets(5.0, 1.0, 1000, 3);
        let short = arrivals_within(5.0, 1.0, 10.0, 3);
        assert_eq!(&long[..short.len()], &short[..]);
        assert!(short.iter().all(|&t| t <= 10.0));
        assert!(long[short.len()] > 10.0);
    }

    #[test]
    fn infinite_rate_sends_at_once() {
        assert_eq!(arrival_offsets(f64::INFINITY, 1.0, 3, 0), vec![0.0; 3]);
    }
}
