//! The client's own timing error, CPU and memory, against the simulator's
//! exact clock (true TTFT 50 ms, ITL 10 ms, 128 output tokens).
//!
//! `cargo bench -p llm-loadtest --bench timing [-- LEVELS] [--pin] [--clock] [--starve]`
//! prints one row per concurrency level (default 1,16,100,500,1000,2000,5000). The simulator
//! runs in its own process (the `sim` subcommand of the same binary), so the CPU and memory
//! figures are the client's alone. `--pin` puts the client on core 0 and the simulator on
//! core 1 (`taskset`), so neither takes the other's CPU; `--clock` times arrivals by the
//! clock after each read instead of the kernel's receive timestamps; `--starve` adds a
//! busy thread per client core, so the client is late to its reads on purpose and the two
//! time sources can be compared under it; `--spread` starts each level's clients over one
//! request cycle (1.32 s) instead of together, so the simulator is not handed a level's
//! requests in one instant and TTFT error is less the closed loop's lockstep.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use llm_loadtest::dataset::DatasetSpec;
use llm_loadtest::engine::ProgressEvent;
use llm_loadtest::metrics::stats::percentile_sorted;
use llm_loadtest::plan::{Bound, LevelPlan, Load, Warmup};
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

fn start_sim(pin: bool) -> (Sim, String) {
    let bin = env!("CARGO_BIN_EXE_llm-loadtest");
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", bin]);
        c
    } else {
        Command::new(bin)
    };
    let mut child = cmd
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

/// user and system CPU seconds of a process (all threads); zero where /proc cannot say.
fn cpu_seconds(pid: &str) -> (f64, f64) {
    llm_loadtest::engine::client_load::cpu_seconds_of(pid).unwrap_or((0.0, 0.0))
}

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}

/// One request's time at the simulator: TTFT, then 127 more tokens.
const CYCLE: Duration = Duration::from_millis(50 + 127 * 10);

fn spec(url: &str, c: u32, n: u64, kernel_timestamps: bool, spread: bool) -> RunSpec {
    RunSpec {
        model: Some("sim-llama".into()),
        levels: vec![LevelPlan {
            load: Load::Concurrency { concurrency: c },
            bound: Bound::Requests(n),
            // A round of warm-up: the measured requests find their connections open, so
            // TTFT error is the client's timing, not 1,000 connects at once.
            warmup: Warmup::Requests(u64::from(c)),
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
        kernel_timestamps,
        ramp: if spread { CYCLE } else { Duration::ZERO },
        ..RunSpec::new(url, "vllm")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let (pin, clock, starve) = (flag("--pin"), flag("--clock"), flag("--starve"));
    let spread = flag("--spread");
    let levels: Vec<u32> = args
        .iter()
        .find(|a| a.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|a| a.split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 100, 500, 1000, 2000, 5000]);
    let _ = rlimit::Resource::NOFILE
        .get()
        .map(|(_, hard)| rlimit::Resource::NOFILE.set(hard, hard));
    if pin {
        // Before the runtime's threads exist: they inherit core 0.
        let me = std::process::id().to_string();
        let ok = Command::new("taskset")
            .args(["-p", "-c", "0", &me])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "taskset could not pin the client to core 0");
    }
    let (sim, url) = start_sim(pin);
    let sim_pid = sim.0.id().to_string();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if starve {
        let cores = if pin {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        for _ in 0..cores {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let plugin_rt = Runtime::new(RuntimeConfig::default()).expect("plugin runtime");
    let plugin_rt = Arc::new(plugin_rt);
    // One-time costs (plugin compile, tokenizer tables, connection setup)
    // stay out of every row.
    rt.block_on(runner::execute(
        &spec(&url, 2, 4, !clock, false),
        &plugin_rt,
        broadcast::channel(16).0,
        CancellationToken::new(),
    ))
    .expect("warm-up run");
    println!(
        "client timing against a fixed clock: TTFT {TTFT_MS} ms, ITL {ITL_MS} ms, {OUTPUT} tokens, \
         {} cores, {}{}{}{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if pin {
            "client on core 0, simulator on core 1"
        } else {
            "unpinned"
        },
        if clock { ", clock timestamps" } else { "" },
        if spread {
            ", clients spread over one cycle"
        } else {
            ""
        },
        if starve {
            ", client starved by busy threads"
        } else {
            ""
        }
    );
    println!(
        "{:>5} {:>6} {:>4} | {:>8} {:>8} | {:>8} {:>8} | {:>6} {:>6} | {:>7} | {:>7} | source | client",
        "conc",
        "reqs",
        "fail",
        "TTFT-p50",
        "TTFT-p99",
        "ITL-med",
        "ITL-p99",
        "usr",
        "sys",
        "RSS",
        "sim"
    );
    println!(
        "{:>5} {:>6} {:>4} | {:>8} {:>8} | {:>8} {:>8} | {:>6} {:>6} | {:>7} | {:>7} |        | loop p99",
        "", "", "", "err ms", "err ms", "err ms", "err ms", "µs/ev", "µs/ev", "KiB/str", "µs/tok"
    );
    for c in levels {
        // At least two rounds per stream, and enough requests at low levels.
        let n = u64::from(c * 2).max(20);
        let s = spec(&url, c, n, !clock, spread);
        let (tx, mut rx) = broadcast::channel(256);
        let rss_before = rss_kib();
        let (usr_before, sys_before) = cpu_seconds("self");
        let sim_before = cpu_seconds(&sim_pid);
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
        let (usr, sys) = cpu_seconds("self");
        let (usr, sys) = (usr - usr_before, sys - sys_before);
        let sim_after = cpu_seconds(&sim_pid);
        let sim_cpu = (sim_after.0 + sim_after.1) - (sim_before.0 + sim_before.1);
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
        let events = records
            .iter()
            .map(|r| u64::from(r.content_events))
            .sum::<u64>()
            .max(1) as f64;
        let failed = records.iter().filter(|r| !r.succeeded()).count();
        let per_stream = if peak_rss > 0.0 {
            format!("{:.1}", (peak_rss - rss_before).max(0.0) / f64::from(c))
        } else {
            "-".to_string()
        };
        let source = match out.result.settings.arrival_times.as_deref() {
            Some(s) if s.starts_with("kernel receive timestamps (") => "kernel",
            Some(s) if s.starts_with("the clock") => "clock",
            Some(_) => "mixed",
            None => "-",
        };
        let client = out.result.levels[0]
            .client
            .as_ref()
            .map_or("-".to_string(), |c| {
                format!(
                    "{:.1} ms{}",
                    c.loop_late_p99_ms,
                    if c.limited { ", client-limited" } else { "" }
                )
            });
        println!(
            "{:>5} {:>6} {:>4} | {:>8.2} {:>8.2} | {:>8.2} {:>8.2} | {:>6.2} {:>6.2} | {:>7} | {:>7.2} | {source:<6} | {client}",
            c,
            records.len(),
            failed,
            percentile_sorted(&ttft_err, 50.0),
            percentile_sorted(&ttft_err, 99.0),
            percentile_sorted(&itl, 50.0) - ITL_MS,
            percentile_sorted(&itl, 99.0) - ITL_MS,
            usr * 1e6 / events,
            sys * 1e6 / events,
            per_stream,
            sim_cpu * 1e6 / events
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
