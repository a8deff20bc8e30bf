//! One soak: the simulator and a `run` as separate processes, the run's resident memory and
//! open descriptors read from /proc while it goes, then every request accounted for
//! (sent = ok + failed by class, and the simulator received as many) and the store read back.
//! Shared by the CI slice (`soak.rs`) and the long bench (`benches/soak.rs`).
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a soak is asked to do.
pub struct Plan<'a> {
    pub bin: &'a str,
    pub streams: u32,
    pub duration: Duration,
    pub fault_rate: f64,
    pub sample_every: Duration,
    pub data_dir: &'a Path,
}

/// One reading of the run process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t_s: f64,
    pub rss_kib: u64,
    /// The highest resident memory so far (`VmHWM`), peaks between samples included.
    pub peak_kib: u64,
    pub fds: usize,
}

/// What a soak found.
#[derive(Debug)]
pub struct Outcome {
    pub samples: Vec<Sample>,
    pub exit: Option<i32>,
    pub requests: u64,
    pub completed: u64,
    pub failed_by_class: Vec<(String, u64)>,
    /// Generation requests the simulator counted (the pre-flight request included).
    pub server_received: u64,
    pub stored_records: u64,
    pub stored_status: String,
    /// The end of the run's stderr, for a soak that went wrong.
    pub stderr_tail: String,
}

impl Outcome {
    /// Resident memory growth over the second half of the samples, MiB per minute (least
    /// squares): the first half holds the ramp to full load.
    pub fn rss_slope_mib_per_min(&self) -> f64 {
        let half = &self.samples[self.samples.len() / 2..];
        let n = half.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mx = half.iter().map(|s| s.t_s).sum::<f64>() / n;
        let my = half.iter().map(|s| s.rss_kib as f64).sum::<f64>() / n;
        let sxy: f64 = half
            .iter()
            .map(|s| (s.t_s - mx) * (s.rss_kib as f64 - my))
            .sum();
        let sxx: f64 = half.iter().map(|s| (s.t_s - mx).powi(2)).sum();
        if sxx == 0.0 {
            0.0
        } else {
            sxy / sxx * 60.0 / 1024.0
        }
    }
}

/// Resident memory now and at its highest (KiB), and open descriptors.
fn read_proc(pid: u32) -> Option<(u64, u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((kib("VmRSS:")?, kib("VmHWM:")?, fds))
}

fn start_sim(bin: &str, fault_rate: f64) -> (Child, String) {
    let mut sim = Command::new(bin)
        .args([
            "sim",
            "--bind",
            "127.0.0.1:0",
            "--ttft",
            "50ms",
            "--itl",
            "20ms",
            "--fault-rate",
            &fault_rate.to_string(),
            // Stalls hold a stream for --stall; 2 s keeps them a fault, not the run's length.
            "--stall",
            "2s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the simulator starts");
    let mut line = String::new();
    let mut out = BufReader::new(sim.stdout.take().expect("piped"));
    out.read_line(&mut line)
        .expect("the simulator says where it listens");
    // Drained to its end: a closed pipe would fail the simulator's next line.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a URL")
        .to_owned();
    (sim, url)
}

/// Stops the simulator with Ctrl-C and reads how many generation requests it received.
fn stop_sim(mut sim: Child) -> u64 {
    let _ = Command::new("kill")
        .args(["-INT", &sim.id().to_string()])
        .status();
    let mut stderr = String::new();
    if let Some(mut e) = sim.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let _ = sim.wait();
    stderr
        .split("stopping: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The `records` count and the status `llm-loadtest show` prints (0 and "" when absent).
pub fn shown(show: &str) -> (u64, String) {
    let records = show
        .lines()
        .find_map(|l| l.trim().strip_prefix("records"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let status = show
        .lines()
        .next()
        .and_then(|l| l.split('(').nth(1))
        .map(|s| s.trim_end_matches(')').to_owned())
        .unwrap_or_default();
    (records, status)
}

pub fn soak(plan: &Plan) -> Outcome {
    let (sim, url) = start_sim(plan.bin, plan.fault_rate);
    let out_file = plan.data_dir.join("soak.json");
    let secs = format!("{}s", plan.duration.as_secs().max(1));
    let streams = plan.streams.to_string();
    let mut run = Command::new(plan.bin)
        .args([
            "run",
            "--server",
            &url,
            "--adapter",
            "vllm",
            "--model",
            "m",
            "--concurrency",
            &streams,
            "--duration",
            &secs,
            "--input-len",
            "32",
            "--output-len",
            "32",
            "--ignore-eos",
            "--tokenizer",
            "cl100k_base",
            "--no-progress",
            "--timeout",
            "30s",
            "--output",
        ])
        .arg(&out_file)
        .env("LLM_LOADTEST_DATA_DIR", plan.data_dir)
        .env("LLM_LOADTEST_NVML_LIB", "/nonexistent/no-nvml-here.so")
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(plan.data_dir.join("run.stderr"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("the run starts");
    let stdout = run.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let started = Instant::now();
    let mut samples = Vec::new();
    let exit = loop {
        if let Some(status) = run.try_wait().expect("the run can be waited on") {
            break status.code();
        }
        if let Some((rss_kib, peak_kib, fds)) = read_proc(run.id()) {
            samples.push(Sample {
                t_s: started.elapsed().as_secs_f64(),
                rss_kib,
                peak_kib,
                fds,
            });
        }
        std::thread::sleep(plan.sample_every);
    };
    let stdout = reader.join().unwrap_or_default();
    let server_received = stop_sim(sim);
    let result: serde_json::Value = std::fs::read_to_string(&out_file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let s = &result["levels"][0]["summary"];
    let failed_by_class = s["errors"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v["count"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run saved as "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("")
        .to_owned();
    let show = Command::new(plan.bin)
        .args(["show", &id])
        .env("LLM_LOADTEST_DATA_DIR", plan.data_dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let (stored_records, stored_status) = shown(&show);
    let stderr = std::fs::read_to_string(plan.data_dir.join("run.stderr")).unwrap_or_default();
    let stderr_tail = stderr
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Outcome {
        stderr_tail,
        samples,
        exit,
        requests: s["requests"].as_u64().unwrap_or(0),
        completed: s["completed"].as_u64().unwrap_or(0),
        failed_by_class,
        server_received,
        stored_records,
        stored_status,
    }
}
