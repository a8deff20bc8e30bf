//! Sharded runs as a Kubernetes Indexed Job makes them — separate processes, each told its
//! index by JOB_COMPLETION_INDEX, started together by `--start-at` — merged into one run that
//! sends and counts what a single process would.
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use llm_loadtest::result::RunResult;

use crate::run_cli::cmd;
use crate::support::{fixed, sim};

/// The workload every run here sends: two closed-loop levels with a counted warm-up.
fn workload(url: &str) -> Vec<String> {
    [
        "run",
        "--server",
        url,
        "--adapter",
        "vllm",
        "--concurrency",
        "4,8",
        "--num-prompts",
        "24",
        "--warmup",
        "4",
        "--input-len",
        "16",
        "--output-len",
        "6",
        "--range-ratio",
        "0.5",
        "--ignore-eos",
        "--seed",
        "7",
        "--slo",
        "ttft:2s",
        "--save-requests",
        "--no-progress",
        "--no-save",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn read(path: &Path) -> RunResult {
    RunResult::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn output(mut c: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `shards` shard processes at once (each with its JOB_COMPLETION_INDEX) and return their
/// result files.
async fn run_shards(url: &str, dir: &Path, shards: u32) -> Vec<PathBuf> {
    let mut args = workload(url);
    args.extend(["--level-interval".to_owned(), "3s".to_owned()]);
    shard_processes(&args, dir, shards, "shard").await
}

/// Runs `args` as `shards` processes told their index by JOB_COMPLETION_INDEX, all due to start
/// at one instant, each writing `PREFIX-I.json` in `dir`; each must exit 0 and say how to merge.
async fn shard_processes(args: &[String], dir: &Path, shards: u32, prefix: &str) -> Vec<PathBuf> {
    // Far enough ahead that every process is ready before it; a shard that is not starts at
    // once and the merge reports how late.
    let start = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(4));
    let mut children = Vec::new();
    let mut files = Vec::new();
    for i in 0..shards {
        let file = dir.join(format!("{prefix}-{i}.json"));
        let mut c = cmd(&[]);
        c.args(args)
            .args(["--shards", &shards.to_string()])
            .args(["--start-at", &start.to_string()])
            .arg("--output")
            .arg(&file)
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        children.push(c.spawn().unwrap());
        files.push(file);
    }
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("llm-loadtest merge"), "{}", text(&out));
    }
    files
}

fn merge(files: &[&Path], extra: &[&str]) -> std::process::Command {
    let mut c = cmd(&["merge"]);
    c.args(files).args(extra);
    c
}

/// `merge FILES --output DIR/merged.json`, which must exit 0: what it printed, and the result.
async fn merged_into_file(files: &[&Path], dir: &Path) -> (String, RunResult) {
    let merged_file = dir.join("merged.json");
    let mut c = merge(files, &[]);
    c.arg("--output").arg(&merged_file);
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    (text(&out), read(&merged_file))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_processes_merge_into_the_run_one_process_sends() {
    let server = sim(fixed(20, 2)).await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();

    let single_file = dir.path().join("single.json");
    let mut c = cmd(&[]);
    c.args(workload(&url)).arg("--output").arg(&single_file);
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let single = read(&single_file);

    let files = run_shards(&url, dir.path(), 3).await;
    for (i, f) in files.iter().enumerate() {
        let shard = read(f).settings.shard.expect("a shard's result says so");
        assert_eq!((shard.index, shard.count), (i as u32, 3));
        assert_eq!(shard.level_interval_s, Some(3.0));
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (shown, merged) = merged_into_file(&refs, dir.path()).await;
    assert!(shown.contains("merged 3 of 3 shards"), "{shown}");
    assert!(shown.contains("every request's record (exact)"), "{shown}");
    let report = merged.merge.as_ref().unwrap();
    assert_eq!((report.merged.len(), report.missing.len()), (3, 0));
    assert!(!merged.interrupted);
    assert!(merged.settings.shard.is_none());

    assert_eq!(merged.levels.len(), single.levels.len());
    for (m, s) in merged.levels.iter().zip(&single.levels) {
        let (ms, ss) = (&m.summary, &s.summary);
        assert_eq!(m.label, s.label);
        // The same requests: count, indices, prompts (their lengths), tokens.
        assert_eq!(
            (ms.requests, ms.completed, ms.failed),
            (ss.requests, ss.completed, 0)
        );
        assert_eq!(ms.total_input_tokens, ss.total_input_tokens, "{}", m.label);
        assert_eq!(
            ms.total_output_tokens, ss.total_output_tokens,
            "{}",
            m.label
        );
        let key = |l: &llm_loadtest::result::LevelResult| {
            let mut v: Vec<(u64, bool, u32)> = l
                .requests
                .iter()
                .flatten()
                .map(|r| (r.index, r.warmup, r.input_tokens))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            key(m),
            key(s),
            "{}: the union is the single run's workload",
            m.label
        );
        // The same distributions: the simulator's clock sets every TTFT and ITL, and no
        // request can beat it — its first token comes no sooner than 20 ms after it was sent,
        // its last no sooner than 2 ms per token after that. (A single gap can be shorter than
        // 2 ms where the token before it was late on a busy machine: a first version asked
        // the ITL median to be ≥ 1.9 ms and failed so on a loaded CI run.)
        assert_eq!(ms.ttft_ms.count, ss.ttft_ms.count);
        assert_eq!(ms.itl_ms.count, ss.itl_ms.count);
        assert!(ms.ttft_ms.min >= 19.9, "{}: {:?}", m.label, ms.ttft_ms);
        for r in m.requests.iter().flatten().filter(|r| r.content_events > 0) {
            let floor = 20.0 + 2.0 * f64::from(r.content_events - 1);
            let e2el = r.e2el_ms.expect("a streamed answer's end");
            assert!(e2el >= floor - 0.1, "{}: {e2el} ms < {floor} ms", m.label);
        }
        let goodput = ms
            .goodput
            .as_ref()
            .expect("the SLOs were judged on the union");
        assert!(goodput.good <= ms.requests);
        // Each shard's part, on one timeline.
        let level = report.levels.iter().find(|l| l.label == m.label).unwrap();
        assert_eq!(level.method, "records");
        let share: f64 = level.shards.iter().map(|s| s.share_pct).sum();
        assert!((share - 100.0).abs() < 1e-6, "{share}");
        assert!(level.shards.iter().all(|s| s.late_ms.is_some()));
        assert!(level.shards.iter().any(|s| s.start_offset_ms == 0.0));
    }

    // A missing shard: merged anyway, named, marked partial, exit 6.
    let out = output(merge(&[refs[0], refs[2]], &[])).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("PARTIAL: shard(s) 2 missing"),
        "{}",
        text(&out)
    );

    // Without records (one shard's dropped), the histograms are merged, and it says so.
    let mut bare = read(&files[1]);
    bare.levels.iter_mut().for_each(|l| l.requests = None);
    let bare_file = dir.path().join("bare.json");
    std::fs::write(&bare_file, serde_json::to_string(&bare).unwrap()).unwrap();
    let (shown, approx) = merged_into_file(&[refs[0], &bare_file, refs[2]], dir.path()).await;
    assert!(shown.contains("histograms (0.1 % resolution"), "{shown}");
    for (a, s) in approx.levels.iter().zip(&single.levels) {
        assert_eq!(a.summary.requests, s.summary.requests);
        assert_eq!(a.summary.total_output_tokens, s.summary.total_output_tokens);
        assert_eq!(a.summary.ttft_ms.count, s.summary.ttft_ms.count);
        assert!(a.summary.ttft_ms.min >= 19.9);
    }

    // Results that are not one run's shards are refused, saying why.
    let mut other = read(&files[1]);
    other.settings.seed = 8;
    let other_file = dir.path().join("other.json");
    std::fs::write(&other_file, serde_json::to_string(&other).unwrap()).unwrap();
    for (files, says) in [
        (vec![refs[0], &other_file], "seed 8 against 7"),
        (vec![refs[0], refs[0]], "are both shard 1/3"),
        (vec![refs[0], &single_file], "is not a shard's result"),
    ] {
        let out = output(merge(&files, &[])).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(says), "{says}: {}", text(&out));
    }
    server.shutdown().await.unwrap();
}

#[test]
fn shard_flags_that_cannot_work_are_refused() {
    let url = "http://127.0.0.1:9";
    for (extra, env, says) in [
        (vec!["--shards", "4"], None, "JOB_COMPLETION_INDEX"),
        (
            vec!["--shards", "4"],
            Some("4"),
            "not below the shard count",
        ),
        (vec!["--shard", "0/4"], None, "count from 1"),
        (vec!["--shard", "1/4"], None, "needs --seed (or --start-at"),
        (
            vec!["--shard", "1/4", "--remote", "http://127.0.0.1:9"],
            None,
            "`import --remote` it",
        ),
        (
            vec!["--start-at", "tomorrow"],
            None,
            "not an RFC 3339 instant",
        ),
        (
            vec!["--concurrency", "1,2", "--start-at", "2030-01-01T00:00:00Z"],
            None,
            "needs --level-interval",
        ),
        (
            vec![
                "--shard",
                "1/4",
                "--seed",
                "1",
                "--request-rate",
                "5",
                "--max-concurrency",
                "2",
            ],
            None,
            "cannot be split over 4 shards",
        ),
    ] {
        let mut c = cmd(&["run", "--server", url, "--no-progress", "--no-save"]);
        c.args(&extra).env_remove("JOB_COMPLETION_INDEX");
        if let Some(i) = env {
            c.env("JOB_COMPLETION_INDEX", i);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{extra:?}: {}", text(&out));
    }
}

/// Open loop: every shard sends its every-N-th arrival of the one seeded schedule, at the time
/// that schedule gives it, so the shards' arrivals are the single run's, arrival for arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_an_open_loop_level_send_the_single_schedule() {
    use llm_loadtest::plan::{Bound, LevelPlan, Load, Shard, Warmup};
    let server = sim(fixed(2, 1)).await;
    let arrivals = |shard: Shard| {
        let mut sp = crate::support::spec(&server, 1, 0, 2);
        sp.levels = vec![LevelPlan {
            load: Load::Rate {
                rate: 200.0,
                burstiness: 0.5,
                max_concurrency: Some(6),
            },
            bound: Bound::Requests(30),
            warmup: Warmup::Requests(3),
            seed: 11,
        }];
        sp.shard = shard;
        async move {
            let out = crate::support::run(&sp).await;
            let mut v: Vec<(u64, bool, i64)> = out.records[0]
                .iter()
                .map(|r| (r.index, r.warmup, (r.intended_start_s * 1e6).round() as i64))
                .collect();
            v.sort();
            v
        }
    };
    let single = arrivals(Shard::WHOLE).await;
    assert_eq!(single.len(), 33);
    let mut union = Vec::new();
    for index in 0..3 {
        let part = arrivals(Shard { index, count: 3 }).await;
        assert_eq!(part.len(), 11, "shard {index}");
        assert!(part.iter().all(|(i, _, _)| i % 3 == u64::from(index)));
        union.extend(part);
    }
    union.sort();
    assert_eq!(union, single);
    server.shutdown().await.unwrap();
}

/// A staged run split over two processes: each sends its clients' share of every stage, from
/// one shared start, and the merge keeps one level per stage with every shard's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_shards_merge_stage_by_stage() {
    let server = sim(fixed(20, 2)).await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "run",
        "--server",
        &url,
        "--stages",
        "300ms:4,300ms:4",
        "--output-len",
        "4",
        "--ignore-eos",
        "--seed",
        "5",
        "--save-requests",
        "--no-progress",
        "--no-save",
    ]
    .map(str::to_owned)
    .to_vec();
    let files = shard_processes(&args, dir.path(), 2, "stage-shard").await;
    let shards: Vec<RunResult> = files.iter().map(|f| read(f)).collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (_, merged) = merged_into_file(&refs, dir.path()).await;
    let labels: Vec<&str> = merged.levels.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, ["clients 0→4", "4 clients"]);
    for (i, level) in merged.levels.iter().enumerate() {
        let parts: u64 = shards.iter().map(|s| s.levels[i].summary.requests).sum();
        assert_eq!(level.summary.requests, parts, "{}", level.label);
        assert!(level.summary.peak_concurrency <= 4, "{}", level.label);
    }
    server.shutdown().await.unwrap();
}
