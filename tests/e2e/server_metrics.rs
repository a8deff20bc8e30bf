//! `run --server-metrics` against the simulator's vLLM-named `/metrics`: the scraped running
//! and waiting requests and KV-cache use per level match what the batching model must show, and
//! a metrics endpoint that does not answer costs the telemetry, not the run.
use serde_json::Value;

use llm_loadtest_sim::{BatchParams, SimConfig};

use crate::run_cli::cmd;
use crate::store_support::{cmd as store_cmd, ok, saved_id};
use crate::support::sim;

/// `run` with the server's metrics scraped: its result, its output, and where the result file is.
async fn run(url: &str, metrics: Option<&str>) -> (Value, String) {
    let (r, stdout, _) = run_in(url, metrics, &tempfile::tempdir().unwrap()).await;
    (r, stdout)
}

async fn run_in(
    url: &str,
    metrics: Option<&str>,
    dir: &tempfile::TempDir,
) -> (Value, String, std::path::PathBuf) {
    let out_file = dir.path().join("r.json");
    let mut c = cmd(&[
        "run",
        "--server",
        url,
        "--adapter",
        "vllm",
        "--model",
        "m",
        "--concurrency",
        "2,8",
        "--num-prompts",
        "24",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--ignore-eos",
        "--tokenizer",
        "cl100k_base",
        "--no-progress",
        "--no-save",
        "--save-requests",
        "--gpu-interval",
        "10ms",
    ]);
    // The interval is the scrapes'; no NVML, so no GPU is sampled whatever this machine has.
    c.env("LLM_LOADTEST_NVML_LIB", "/nonexistent/no-nvml-here.so");
    c.arg("--server-metrics");
    if let Some(m) = metrics {
        c.arg(m);
    }
    c.arg("--output").arg(&out_file);
    let stdout = ok(c).await;
    let result = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    (result, stdout, out_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_queue_and_kv_use_follow_the_batch_limit() {
    // 4 slots: at c=2 at most the two clients run or wait (a request waits for the next step
    // to be admitted); at c=8 four run and the rest wait.
    let server = sim(SimConfig::batching(BatchParams {
        max_batch: 4,
        prefill_us_per_token: 0.0,
        step_base_us: 20_000.0,
        step_per_seq_us: 0.0,
        kv_tokens: 1_000,
    }))
    .await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let (r, stdout, file) = run_in(&url, None, &dir).await;
    let m = &r["server_metrics"];
    assert_eq!(m["server"], "vLLM");
    assert_eq!(m["url"], format!("{url}/metrics"));
    let (low, high) = (&r["levels"][0]["server"], &r["levels"][1]["server"]);
    let at = |l: &Value, k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{k} in {l}"));
    assert!(
        at(low, "max_running") <= 2.0 && at(low, "max_waiting") <= 2.0,
        "{low}"
    );
    assert_eq!(at(high, "max_running"), 4.0, "{high}");
    assert!(
        at(high, "max_waiting") >= 1.0 && at(high, "max_waiting") <= 8.0,
        "{high}"
    );
    // Running sequences hold KV tokens: more of them at c=8 than at c=2, never all 1,000.
    let (kv_low, kv_high) = (at(low, "peak_kv_usage_pct"), at(high, "peak_kv_usage_pct"));
    assert!(
        kv_low > 0.0 && kv_high > kv_low && kv_high < 100.0,
        "{kv_low} {kv_high}"
    );
    assert_eq!(high["failed_scrapes"], 0);
    assert!(
        stdout.contains("c=8 (vLLM): running") && stdout.contains("KV cache peak"),
        "{stdout}"
    );
    // The report draws the readings over time.
    let store = dir.path().join("store");
    let mut import = store_cmd(&store, &["import"]);
    import.arg(&file);
    let id = saved_id(&ok(import).await);
    let html = ok(store_cmd(&store, &["export", &id, "--format", "html"])).await;
    for title in [
        "Server requests over time",
        "KV-cache use over time",
        "Client output tokens/s over time",
        "Client TTFT over time",
    ] {
        assert!(html.contains(title), "{title} missing from the report");
    }
    // `show` prints them as sparklines, `compare` lays the runs over each other.
    let shown = ok(store_cmd(&store, &["show", &id])).await;
    let kv = shown
        .lines()
        .find(|l| l.trim_start().starts_with("KV cache "))
        .unwrap_or_else(|| panic!("no KV sparkline in:\n{shown}"));
    // The peak column is the full bar, every column between the runs' first and last scrape
    // is drawn.
    assert!(kv.contains('█') && kv.contains("peak"), "{kv}");
    assert!(
        shown.contains("Server requests over time (requests)"),
        "{shown}"
    );
    let mut again = store_cmd(&store, &["import"]);
    again.arg(&file);
    let other = saved_id(&ok(again).await);
    let cmp = ok(store_cmd(
        &store,
        &["compare", &id, &other, "--format", "html"],
    ))
    .await;
    assert!(
        cmp.contains("GPUs and server over time") && cmp.contains(&format!("{other} waiting")),
        "the comparison lacks the runs over time"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_endpoint_that_fails_is_recorded_and_the_run_goes_on() {
    let server = sim(crate::support::fixed(2, 1)).await;
    let url = format!("http://{}", server.local_addr());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/metrics", closed.local_addr().unwrap());
    drop(closed);
    let (r, stdout) = run(&url, Some(&dead)).await;
    assert_eq!(r["levels"].as_array().unwrap().len(), 2);
    let scrapes = r["server_metrics"]["scrapes"].as_array().unwrap();
    assert!(!scrapes.is_empty() && scrapes.iter().all(|s| s["error"].is_string()));
    assert!(r["server_metrics"]["server"].is_null());
    assert!(
        stdout.contains(&format!(
            "scrapes of {dead} failed (first: {dead} could not be reached"
        )),
        "{stdout}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_ttft_and_itl_quantiles_come_from_its_histogram_buckets() {
    // 45 ms to the first token, 35 ms between tokens: vLLM's buckets put them in (40, 60] ms
    // and (25, 50] ms, so the quantiles read from the growth of those buckets over each level
    // must name exactly those buckets.
    let server = sim(crate::support::fixed(45, 35)).await;
    let url = format!("http://{}", server.local_addr());
    let (r, stdout) = run(&url, None).await;
    for level in r["levels"].as_array().unwrap() {
        let s = &level["server"];
        let bucket = |k: &str, p: &str| {
            (
                s[k][p]["bucket_lo_ms"].as_f64(),
                s[k][p]["bucket_hi_ms"].as_f64(),
            )
        };
        for p in ["p50", "p99"] {
            assert_eq!(bucket("server_ttft_ms", p), (Some(40.0), Some(60.0)), "{s}");
            assert_eq!(bucket("server_itl_ms", p), (Some(25.0), Some(50.0)), "{s}");
        }
    }
    assert!(
        stdout.contains("server TTFT p50 40–60 ms, p99 40–60 ms, ITL p50 25–50 ms"),
        "{stdout}"
    );
    server.shutdown().await.unwrap();
}
