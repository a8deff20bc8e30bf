//! The client's own timing error, CPU and memory, against the simulator's
//! exact clock (true TTFT 50 ms, ITL 10 ms, 128 output tokens).
//!
//! `cargo bench -p llm-loadtest --bench timing [-- LEVELS]` prints one row per
//! concurrency level (default 1,10,100,500,1000,2000). The simulator runs in
//! its own process (the `sim` subcommand of the same binary), so the CPU and
//! memory figures are the client's alone.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use llm_loadtest::dataset::DatasetSpec;
use llm_loadtest::engine::{Bound, LevelPlan, Load, ProgressEvent, Warmup};
use llm_loadtest::metrics::stats::percentile_sorted;
use llm_loadtest::plugin::{Runtime, RuntimeConfig};
use llm_loadtest::runner::{self, RunSpec};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const TTFT_MS: f64 = 50.0;
const ITL_MS: f64 = 10.0;
const OUTPUT: u32 = 128;

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim() -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-loadtest"))
        .args([
            "sim",
            "--bind",
            "127.0.0.1:0",
            "--ttft",
            "50ms",
            "--itl",
            "10ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the simulator starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the simulator prints its address")
            .expect("readable stdout");
        if let Some(u) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break u.to_string();
        }
    };
    // Keep draining so the simulator never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Sim(child), url)
}

/// user + system CPU seconds of a process, from /proc (all threads).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the `)`.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}

fn spec(url: &str, c: u32, n: u64) -> RunSpec {
    RunSpec {
        model: Some("sim-llama".into()),
        levels: vec![LevelPlan {
            load: Load::Concurrency { concurrency: c },
            bound: Bound::Requests(n),
            warmup: Warmup::None,
            seed: 0,
        }],
        dataset: DatasetSpec::Synthetic {
            input_len: 32,
            output_len: OUTPUT,
            range_ratio: 0.0,
            prefix_len: 0,
        },
        ignore_eos: true,
        timeout: Duration::from_secs(120),
        ..RunSpec::new(url, "vllm")
    }
}

fn main() {
    let levels: Vec<u32> = std::env::args()
        .skip(1)
        .find(|a| a.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|a| a.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 10, 100, 500, 1000, 2000]);
    let _ = rlimit::Resource::NOFILE
        .get()
        .map(|(_, hard)| rlimit::Resource::NOFILE.set(hard, hard));
    let (sim, url) = start_sim();
    let sim_pid = sim.0.id().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let plugin_rt = Runtime::new(RuntimeConfig::default()).expect("plugin runtime");
    let plugin_rt = Arc::new(plugin_rt);
    // One-time costs (plugin compile, tokenizer tables, connection setup)
    // stay out of every row.
    rt.block_on(runner::execute(
        &spec(&url, 2, 4),
        &plugin_rt,
        broadcast::channel(16).0,
        CancellationToken::new(),
    ))
    .expect("warm-up run");
    println!(
        "client timing against a fixed clock: TTFT {TTFT_MS} ms, ITL {ITL_MS} ms, {OUTPUT} tokens, \
         {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>6} {:>6} {:>6} | {:>9} {:>9} | {:>9} | {:>10} | {:>10} | {:>10}",
        "conc",
        "reqs",
        "failed",
        "TTFT-p50",
        "TTFT-p99",
        "ITL-p99",
        "CPU/event",
        "RSS/stream",
        "sim CPU"
    );
    println!(
        "{:>6} {:>6} {:>6} | {:>9} {:>9} | {:>9} | {:>10} | {:>10} | {:>10}",
        "", "", "", "err ms", "err ms", "err ms", "µs", "KiB", "µs/token"
    );
    for c in levels {
        // At least two rounds per stream, and enough requests at low levels.
        let n = u64::from(c * 2).max(20);
        let s = spec(&url, c, n);
        let (tx, mut rx) = broadcast::channel(256);
        let rss_before = rss_kib();
        let cpu_before = cpu_seconds("self");
        let sim_cpu_before = cpu_seconds(&sim_pid);
        let prt = plugin_rt.clone();
        let out = rt.block_on(async move {
            let peak = tokio::spawn(async move {
                // RSS while every stream is in flight.
                let mut peak: f64 = 0.0;
                while let Ok(ev) = rx.recv().await {
                    if let ProgressEvent::Tick(snap) = ev
                        && snap.in_flight >= u64::from(c)
                    {
                        peak = peak.max(rss_kib());
                    }
                }
                peak
            });
            let out = runner::execute(&s, &prt, tx, CancellationToken::new()).await;
            (out, peak.await.unwrap_or(0.0))
        });
        let cpu = cpu_seconds("self") - cpu_before;
        let sim_cpu = cpu_seconds(&sim_pid) - sim_cpu_before;
        let (out, peak_rss) = out;
        let out = out.expect("the run starts");
        let records = &out.records[0];
        let mut ttft_err: Vec<f64> = records
            .iter()
            .filter_map(|r| r.ttft_ms.map(|t| t - TTFT_MS))
            .collect();
        ttft_err.sort_by(f64::total_cmp);
        let mut itl: Vec<f64> = records
            .iter()
            .flat_map(|r| r.itl_ms.iter().copied())
            .collect();
        itl.sort_by(f64::total_cmp);
        let events: u64 = records.iter().map(|r| u64::from(r.content_events)).sum();
        let failed = records.iter().filter(|r| !r.succeeded()).count();
        let per_stream = if peak_rss > 0.0 {
            format!("{:.1}", (peak_rss - rss_before).max(0.0) / f64::from(c))
        } else {
            "-".to_string()
        };
        println!(
            "{:>6} {:>6} {:>6} | {:>9.2} {:>9.2} | {:>9.2} | {:>10.2} | {:>10} | {:>10.2}",
            c,
            records.len(),
            failed,
            percentile_sorted(&ttft_err, 50.0),
            percentile_sorted(&ttft_err, 99.0),
            percentile_sorted(&itl, 99.0) - ITL_MS,
            cpu * 1e6 / events.max(1) as f64,
            per_stream,
            sim_cpu * 1e6 / events.max(1) as f64
        );
    }
}
