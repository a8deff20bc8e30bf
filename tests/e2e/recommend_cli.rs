//! `recommend` as a user meets it when the answer is not a GPU count: a target no concurrency
//! meets, a target met at the largest probe allowed, a server that answers nothing, and a
//! recommendation policy that breaks. Each has its message and exit code, and keeps the probes
//! measured so far in the store.
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::plugin_support::test_guest;
use crate::run_cli::cmd;
use crate::store_support::{cmd as store_cmd, ok, saved_id};
use crate::support::{fixed, sim};

/// `recommend` against `url` with a small, fast workload, then `extra`.
pub fn small_search<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "recommend",
        "--server",
        url,
        "--adapter",
        "vllm",
        "--model",
        "m",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--ignore-eos",
        "--tokenizer",
        "cl100k_base",
        "--goodput-target",
        "80",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    args
}

/// [`small_search`], storing into `dir`.
async fn recommend(url: &str, dir: &Path, extra: &[&str]) -> Output {
    let args = small_search(url, extra);
    let mut c = cmd(&args);
    c.arg("--data-dir").arg(dir);
    tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run the probes were saved as, read back with `show`: its text.
async fn saved_run(stdout: &str, dir: &Path) -> String {
    ok(store_cmd(dir, &["show", &saved_id(stdout)])).await
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/components")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_no_concurrency_meets_exits_3_and_names_the_objective() {
    let server = sim(fixed(20, 1)).await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let out = recommend(
        &url,
        dir.path(),
        &[
            "--slo",
            "ttft:2ms",
            "--peak-concurrency",
            "10",
            "--policy-option",
            "min-requests=8",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("No concurrency meets 80 % SLO attainment on one replica, not even 1")
            && stdout.contains("missed ttft ≤ 2 ms at c=1"),
        "{stdout}"
    );
    let shown = saved_run(&stdout, dir.path()).await;
    assert!(shown.contains("No concurrency meets"), "{shown}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_met_at_the_largest_probe_says_at_least() {
    let server = sim(fixed(2, 1)).await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let out = recommend(
        &url,
        dir.path(),
        &[
            "--slo",
            "ttft:10s",
            "--peak-concurrency",
            "10",
            "--max-probe-concurrency",
            "2",
            "--policy-option",
            "min-requests=8",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("at least 2: the largest probe allowed passed")
            && stdout.contains("need 5 × "),
        "{stdout}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_nothing_exits_1_at_the_pre_flight_or_keeps_the_probe() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    // By default the pre-flight request says so before any probe.
    let out = recommend(
        &url,
        dir.path(),
        &["--slo", "ttft:1s", "--peak-concurrency", "10"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("the pre-flight request failed (connect): could not connect to")
            && stderr.contains("--no-preflight"),
        "{stderr}"
    );
    // Without it, the first probe finds out, and is kept.
    let out = recommend(
        &url,
        dir.path(),
        &[
            "--slo",
            "ttft:1s",
            "--peak-concurrency",
            "10",
            "--no-preflight",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("the server answered no request: no request succeeded at c=1")
            && stderr.contains("connect"),
        "{stderr}"
    );
    assert!(!stdout.contains("No concurrency meets"), "{stdout}");
    let shown = saved_run(&stdout, dir.path()).await;
    assert!(shown.contains("connect"), "{shown}");
}

/// `tests/guests/bad-policy` misbehaves as `--peak-concurrency` tells it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_exits_4_with_what_it_did() {
    let server = sim(fixed(2, 1)).await;
    let url = format!("http://{}", server.local_addr());
    let bad = test_guest("bad-policy");
    for (peak, says, probes) in [
        ("1", "trapped in next", 0),
        (
            "2",
            "will not act on: asked for a probe at concurrency 0",
            0,
        ),
        ("3", "deadline in next", 0),
        ("4", "trapped in next", 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = recommend(
            &url,
            dir.path(),
            &[
                "--slo",
                "ttft:1s",
                "--peak-concurrency",
                peak,
                "--policy",
                &bad,
            ],
        )
        .await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(4), "peak {peak}: {stdout}{stderr}");
        assert!(
            stderr.contains("the recommendation policy failed") && stderr.contains(says),
            "peak {peak}: {stderr}"
        );
        if probes > 0 {
            let shown = saved_run(&stdout, dir.path()).await;
            assert!(shown.contains("c=1"), "{shown}");
        } else {
            assert!(!stdout.contains("probes saved"), "{stdout}");
        }
    }
    // A well-behaved run of the same component: its answer is obeyed and named.
    let dir = tempfile::tempdir().unwrap();
    let out = recommend(
        &url,
        dir.path(),
        &[
            "--slo",
            "ttft:1s",
            "--peak-concurrency",
            "5",
            "--policy",
            &bad,
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("one replica holds 1 (1 held, 2 did not)")
            && stdout.contains("policy            bad-policy 0.0.1"),
        "{stdout}"
    );
    // The saved run shows attainment against concurrency with the conclusion marked.
    let shown = saved_run(&stdout, dir.path()).await;
    assert!(
        shown.contains("attainment by concurrency (target 80 %, marked |)")
            && shown
                .lines()
                .any(|l| l.contains("c=2") && l.ends_with("first failing")),
        "{shown}"
    );
    let html = ok(store_cmd(
        dir.path(),
        &["export", &saved_id(&stdout), "--format", "html"],
    ))
    .await;
    for label in [
        "SLO attainment vs concurrency",
        "C* = 1",
        "bracket 1–2",
        "target 80 %",
        "bad-policy 0.0.1",
    ] {
        assert!(html.contains(label), "{label} missing from the HTML report");
    }
    server.shutdown().await.unwrap();
}

/// A component of another kind, or a refused option, stops before any load is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_is_not_one_or_refuses_the_goal_sends_no_load() {
    let server = sim(fixed(2, 1)).await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let adapter = fixture("tinyjsonl-adapter-wit0.1-5585908.wasm");
    let out = recommend(
        &url,
        dir.path(),
        &[
            "--slo",
            "ttft:1s",
            "--peak-concurrency",
            "5",
            "--policy",
            adapter.to_str().unwrap(),
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert!(
        stderr.contains("does not export the recommend-policy interface"),
        "{stderr}"
    );
    let out = recommend(
        &url,
        dir.path(),
        &[
            "--slo",
            "ttft:1s",
            "--peak-concurrency",
            "5",
            "--policy-option",
            "speed=11",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("refused this search") && stderr.contains("unknown policy option"),
        "{stderr}"
    );
    assert_eq!(server.stats().requests_received, 0, "no load was sent");
    server.shutdown().await.unwrap();
}

/// With the server's metrics scraped, the answer names what held the first failing
/// concurrency back: one batch slot, so at c=2 one request always waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_names_the_resource_the_server_metrics_point_to() {
    let server = sim(llm_loadtest_sim::SimConfig::batching(
        llm_loadtest_sim::BatchParams {
            max_batch: 1,
            prefill_us_per_token: 0.0,
            step_base_us: 50_000.0,
            step_per_seq_us: 0.0,
            kv_tokens: 1_000_000,
        },
    ))
    .await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let out = recommend(
        &url,
        dir.path(),
        &[
            "--slo",
            "ttft:150ms",
            "--peak-concurrency",
            "4",
            "--policy-option",
            "min-requests=8",
            // A probe near the target is not repeated past 40 requests: the answer's C* is
            // not what this test checks.
            "--policy-option",
            "max-requests=40",
            "--server-metrics",
            "--gpu-interval",
            "10ms",
            "--gpu-metrics",
            "http://127.0.0.1:1/none",
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    // Whatever C* the model gives, above one slot requests queue: the readings say so.
    assert!(
        stdout.contains("the readings point to: the server's batch: 1 running, up to")
            && stdout.contains("readings at it    the server's batch: 1 running"),
        "{stdout}"
    );
    // An exporter that never answers costs the GPU figures, nothing else; the saved probes
    // keep the server's readings per level.
    let shown = saved_run(&stdout, dir.path()).await;
    assert!(
        shown.contains("no GPU reading") && shown.contains("c=2 (vLLM): running"),
        "{shown}"
    );
    server.shutdown().await.unwrap();
}
