//! The `run` command as a user meets it: flags, exit codes, output files,
//! Ctrl-C.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use llm_loadtest::result::{RunResult, json_schema};

use crate::support::{fixed, sim};

const BIN: &str = env!("CARGO_BIN_EXE_llm-loadtest");

pub(crate) fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("OPENAI_API_KEY").env(
        "LLM_LOADTEST_PLUGIN_CACHE",
        std::env::temp_dir().join("llm-loadtest-e2e-plugin-cache"),
    );
    c
}

/// The command exited 0; its stderr is the message otherwise.
fn assert_ok(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_flags_exit_2_with_a_message() {
    for args in [
        vec!["run", "--concurrency", "0"],
        vec!["run", "--request-rate", "-3"],
        vec!["run", "--duration", "forever"],
        vec!["run", "--slo", "latency:1s"],
        vec!["run", "--no-such-flag"],
        vec!["run", "--extra-body", "not json"],
        vec!["run", "--no-stream", "--slo", "ttft:1s"],
    ] {
        let out = cmd(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
    }
}

#[test]
fn the_committed_json_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/result-v1.schema.json");
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "host/schemas/result-v1.schema.json is stale: run the tests with UPDATE_SCHEMA=1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_files_in_both_formats() {
    let server = sim(fixed(5, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let native = dir.path().join("r.json");
    let url = format!("http://{}", server.local_addr());
    let args = [
        "run",
        "--server",
        &url,
        "--adapter",
        "vllm",
        "--concurrency",
        "1,2",
        "--num-prompts",
        "6",
        "--input-len",
        "16",
        "--output-len",
        "4",
        "--ignore-eos",
        "--slo",
        "ttft:1s",
        "--save-requests",
        "--no-progress",
        "--no-save",
    ];
    let mut c = cmd(&args);
    c.arg("--output").arg(&native);
    let out = tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap();
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("c=2") && stdout.contains("TTFT"),
        "{stdout}"
    );
    let result = RunResult::from_json(&std::fs::read_to_string(&native).unwrap()).unwrap();
    assert_eq!(result.levels.len(), 2);
    assert_eq!(
        result.settings.model, "sim-llama",
        "discovered from /v1/models"
    );
    assert_eq!(result.levels[1].requests.as_ref().unwrap().len(), 6);
    assert_eq!(result.adapter.name, "vllm");

    let vllm = dir.path().join("v.json");
    let mut c = cmd(&args);
    c.arg("--output")
        .arg(&vllm)
        .args(["--output-format", "vllm"]);
    let out = tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let first = dir.path().join("v-0-c1.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    for key in [
        "completed",
        "request_throughput",
        "output_throughput",
        "mean_ttft_ms",
        "median_ttft_ms",
        "p99_ttft_ms",
        "mean_tpot_ms",
        "p99_itl_ms",
        "ttfts",
        "itls",
        "request_goodput",
        "max_concurrency",
    ] {
        assert!(v.get(key).is_some(), "vLLM key {key} missing");
    }
    assert_eq!(v["completed"], 6);
    assert_eq!(v["ttfts"].as_array().unwrap().len(), 6);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_gate_sets_exit_code_3() {
    let server = sim(fixed(30, 1)).await;
    let url = format!("http://{}", server.local_addr());
    let mut c = cmd(&[
        "run",
        "--server",
        &url,
        "--model",
        "m",
        "--num-prompts",
        "3",
        "--output-len",
        "2",
        "--input-len",
        "8",
        "--slo",
        "ttft:5ms",
        "--fail-under-attainment",
        "90",
        "--no-progress",
        "--no-save",
    ]);
    let out = tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_and_writes_what_was_measured() {
    // Every request takes at least 220 ms (20 + 2 × 100, by causality).
    // Level 1 (100 at once) takes about one request's time; level 2 (one at
    // a time) at least 100 times that, 22 s, on any machine: the interrupt,
    // sent as soon as level 2 says it started, lands inside it however
    // loaded the machine is (it needs a fork of `kill`, not seconds).
    let server = sim(fixed(20, 100)).await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.json");
    let mut c = cmd(&[
        "run",
        "--server",
        &url,
        "--model",
        "m",
        "--concurrency",
        "100,1",
        "--num-prompts",
        "100",
        "--output-len",
        "3",
        "--input-len",
        "8",
        "--ignore-eos",
        "--no-progress",
        "--no-save",
    ]);
    c.arg("--output").arg(&path);
    let status = tokio::task::spawn_blocking(move || {
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.starts_with("level 2/2") {
                let ok = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
        }
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130));
    let result = RunResult::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(result.interrupted);
    assert_eq!(
        result.levels[0].summary.completed, 100,
        "level 1 is kept whole"
    );
    assert!(!result.levels[0].interrupted);
    server.shutdown().await.unwrap();
}

/// A whole body arrives at once: TTFT, TPOT and ITL are not measured (`-` in the table,
/// `null` in the result), E2EL and throughput are, and an e2el objective is judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stream_leaves_streaming_metrics_unmeasured() {
    let server = sim(fixed(5, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    let url = format!("http://{}", server.local_addr());
    let out = cmd(&[
        "run",
        "--server",
        &url,
        "--model",
        "m",
        "--no-stream",
        "--concurrency",
        "2",
        "--num-prompts",
        "6",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--ignore-eos",
        "--slo",
        "e2el:10min",
        "--no-progress",
        "--no-save",
        "--output",
        path.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let s = &json["levels"][0]["summary"];
    for unmeasured in ["ttft_ms", "tpot_ms", "itl_ms"] {
        assert!(s[unmeasured].is_null(), "{unmeasured}: {}", s[unmeasured]);
    }
    assert_eq!(s["e2el_ms"]["count"], 6);
    assert_eq!(s["completed"], 6);
    assert_eq!(s["total_output_tokens"], 24);
    assert_eq!(s["goodput"]["good"], 6);
    let result = RunResult::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(result.levels[0].summary.ttft_ms.count, 0, "null reads back");
    let row = stdout
        .lines()
        .find(|l| l.contains("c=2"))
        .unwrap_or_else(|| panic!("no c=2 row: {stdout}"));
    // TTFT, TPOT and ITL columns.
    assert!(row.matches(" - ").count() >= 3, "{row}");
    server.shutdown().await.unwrap();
}

/// `info` reports what the server's endpoints say, and exits 1 when none answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_lists_the_servers_version_and_models() {
    let server = sim(fixed(1, 1)).await;
    let url = format!("http://{}", server.local_addr());
    let out = tokio::task::spawn_blocking(move || {
        cmd(&["info", "--server", &url, "--format", "json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["server"]["version"]
            .as_str()
            .unwrap()
            .starts_with("vLLM "),
        "{v}"
    );
    let model = &v["server"]["models"][0];
    assert_eq!(model["id"], "sim-llama");
    assert!(model["context_length"].as_u64().unwrap() > 0, "{v}");
    assert!(v["host"]["cpus"].as_u64().unwrap() >= 1);
    server.shutdown().await.unwrap();

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = cmd(&["info", "--server", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered none"));
}

/// `recommend` refuses what it cannot use before probing anything.
#[test]
fn recommend_refuses_bad_flags_with_exit_2() {
    let base = ["recommend", "--peak-concurrency", "10", "--slo", "ttft:1s"];
    let with = |extra: &[&'static str]| [&base[..], extra].concat();
    for args in [
        vec!["recommend", "--peak-concurrency", "10"],
        vec!["recommend", "--peak-concurrency", "0", "--slo", "ttft:1s"],
        with(&["--concurrency", "4"]),
        with(&["--goodput-target", "100"]),
        with(&["--max-duration", "x"]),
    ] {
        let out = cmd(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error"),
            "{args:?}"
        );
    }
}
