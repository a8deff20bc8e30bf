//! Fixed-clock accuracy of the simulator at many concurrent streams: how late its tokens
//! leave against their schedule (server side) and as a client on the same machine sees them.
//! Figures, not assertions: they depend on the machine and what else runs on it.
//!
//! `cargo bench -p llm-loadtest-sim --bench fixed_clock -- 1000,2000` (stream counts; default
//! 1000). The simulator runs on its own one-worker runtime so its CPU time can be told apart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llm_loadtest_sim::SimConfig;
use serde_json::json;

#[allow(dead_code)]
#[path = "../tests/sim/client.rs"]
mod client;

use client::{connect, spawn};

const TOKENS: u32 = 20;

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .flat_map(|a| {
            a.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect::<Vec<usize>>()
        })
        .collect();
    let counts = if counts.is_empty() {
        vec![1_000]
    } else {
        counts
    };
    for streams in counts {
        measure(streams);
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Reads the CPU time (user + system) of this process's threads whose name starts with one of
/// `prefixes`, from /proc (Linux); `None` elsewhere.
fn thread_cpu(prefixes: &[&str]) -> Option<Duration> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).ok()?;
        if !prefixes.iter().any(|p| comm.trim_end().starts_with(p)) {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        ticks += fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?;
    }
    // USER_HZ is 100 on every Linux ABI.
    Some(Duration::from_millis(ticks * 10))
}

/// Simulator CPU time and tokens generated at one instant.
type CpuMark = (Option<Duration>, u64);

fn measure(streams: usize) {
    // Long enough that all streams are open at once, slow enough that a debug build on a
    // shared 2-core machine keeps up (the figures are printed; see README for release ones).
    let ttft = Duration::from_millis(200);
    let itl = Duration::from_millis(100);

    // The simulator runs on its own runtime so its threads' CPU time can be told apart.
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sim-rt")
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client-rt")
        .enable_all()
        .build()
        .unwrap();
    let sim = sim_rt.block_on(spawn(SimConfig::fixed(ttft, itl)));
    let addr = sim.local_addr();
    let cpu_before = thread_cpu(&["sim-rt", "sim-clock"]);

    // When every stream has its first token, all are open: CPU from then on is per token.
    let first_seen = Arc::new(AtomicUsize::new(0));
    let mark: Arc<Mutex<Option<CpuMark>>> = Arc::default();
    let sim_stats = Arc::new(sim);
    let started = Instant::now();
    let (first_seen2, mark2, sim2) = (first_seen.clone(), mark.clone(), sim_stats.clone());
    let replies = client_rt.block_on(async move {
        // Connect first, so the requests are not queued behind a thousand handshakes.
        let connecting: Vec<_> = (0..streams).map(|_| tokio::spawn(connect(addr))).collect();
        let mut conns = Vec::with_capacity(streams);
        for c in connecting {
            conns.push(c.await.unwrap());
        }
        let tasks: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(i, conn)| {
                let (first_seen, mark, sim) = (first_seen2.clone(), mark2.clone(), sim2.clone());
                tokio::spawn(async move {
                    let body = json!({"prompt": format!("stream {i}"), "max_tokens": TOKENS,
                        "ignore_eos": true, "stream": true});
                    conn.send_observed("POST", "/v1/completions", &body.to_string(), move || {
                        if first_seen.fetch_add(1, Ordering::SeqCst) + 1 == streams {
                            let cpu = thread_cpu(&["sim-rt", "sim-clock"]);
                            *mark.lock().unwrap() = Some((cpu, sim.stats().tokens_generated));
                        }
                    })
                    .await
                })
            })
            .collect();
        let mut replies = Vec::with_capacity(streams);
        for t in tasks {
            replies.push(t.await.unwrap());
        }
        replies
    });
    let wall = started.elapsed();
    let cpu_after = thread_cpu(&["sim-rt", "sim-clock"]);
    let s = sim_stats.stats();

    let mut client_err: Vec<f64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200);
            assert_eq!(r.frames.len(), TOKENS as usize + 1);
            (r.first_frame_after_send().unwrap().as_secs_f64() - ttft.as_secs_f64()) * 1e3
        })
        .collect();
    client_err.sort_by(f64::total_cmp);
    println!(
        "fixed mode, {streams} streams × {TOKENS} tokens, ttft {ttft:?}, itl {itl:?}, wall {wall:?}"
    );
    println!(
        "  server first-token lateness (send − schedule): p50 ≤ {:?}, p99 ≤ {:?}, max {:?}, mean {:?}",
        s.first_token_lateness.p50,
        s.first_token_lateness.p99,
        s.first_token_lateness.max,
        s.first_token_lateness.mean
    );
    println!(
        "  server all-token lateness: p50 ≤ {:?}, p99 ≤ {:?}, max {:?}",
        s.token_lateness.p50, s.token_lateness.p99, s.token_lateness.max
    );
    println!(
        "  client TTFT − configured (ms): p50 {:.3}, p99 {:.3}, max {:.3}, min {:.3}",
        percentile(&client_err, 0.5),
        percentile(&client_err, 0.99),
        client_err[client_err.len() - 1],
        client_err[0]
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let cpu = after - before;
        println!(
            "  simulator CPU, whole run: {cpu:?} for {streams} requests and {} tokens ({} frames)",
            s.tokens_generated, s.body_frames,
        );
        if let Some((Some(at_mark), tokens_at_mark)) = *mark.lock().unwrap() {
            let (cpu, tokens) = (after - at_mark, s.tokens_generated - tokens_at_mark);
            println!(
                "  simulator CPU with all {streams} streams open: {cpu:?} for {tokens} tokens = {:.1} µs per token (debug build unless --release)",
                cpu.as_secs_f64() * 1e6 / tokens as f64
            );
        }
    }
    println!("  clock wake-ups {}", s.timer_wakeups);
    assert_eq!(s.tokens_generated, (streams as u64) * u64::from(TOKENS));
    drop(sim_stats);
    drop(sim_rt);
}
