//! `llm-loadtest gpu` against a scripted fake NVML (`tests/fake-nvml`), so the GPU code runs on
//! machines without a GPU: every field read, a function an old driver lacks, a GPU lost between
//! readings, no GPU, a driver that fails to initialise, and no library at all.
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

use crate::run_cli::cmd;

/// Builds the fake NVML once per test process: a dependency-free cdylib, seconds to build.
fn fake_nvml() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target_dir = workspace.join("target").join("fake-nvml");
        crate::support::cargo_build_outside(
            &workspace.join("tests").join("fake-nvml"),
            &["--release"],
            &target_dir,
        );
        let lib = target_dir.join("release").join(format!(
            "{}nvidia_ml{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ));
        assert!(lib.is_file(), "{} was not built", lib.display());
        lib
    })
}

fn gpu(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec!["gpu"];
    all.extend_from_slice(args);
    let mut c = cmd(&all);
    c.env("LLM_LOADTEST_NVML_LIB", fake_nvml());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn readings(out: &Output) -> Vec<Value> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_field_is_read_and_a_missing_function_is_marked_unavailable() {
    let r = readings(&gpu(&["--format", "json"], &[("FAKE_NVML_GPUS", "2")]));
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r["driver_version"], "550.54.15");
    assert_eq!(r["cuda_version"], "12.4");
    let gpus = r["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2);
    let g = &gpus[1];
    assert_eq!(g["name"], "Fake H100 80GB");
    assert_eq!(g["uuid"], "GPU-fake-1");
    assert_eq!(g["memory_used_bytes"], 11u64 << 30);
    assert_eq!(g["memory_total_bytes"], 80u64 << 30);
    assert_eq!(
        (
            g["sm_utilization_pct"].as_u64(),
            g["memory_utilization_pct"].as_u64()
        ),
        (Some(75), Some(40))
    );
    assert_eq!(
        (g["power_w"].as_f64(), g["power_limit_w"].as_f64()),
        (Some(250.0), Some(700.0))
    );
    assert_eq!(g["temperature_c"], 65);
    assert_eq!(
        (g["sm_clock_mhz"].as_u64(), g["memory_clock_mhz"].as_u64()),
        (Some(1980), Some(2619))
    );
    assert_eq!(g["throttle_reasons"], serde_json::json!(["SW_POWER_CAP"]));
    assert_eq!(g["processes"][0]["pid"], 4242);
    assert_eq!(g["processes"][0]["used_memory_bytes"], 9u64 << 30);
    // The fake, like a pre-Volta driver, does not export the total-energy counter.
    assert!(g["energy_j"].is_null());
    assert_eq!(
        g["unavailable"]["energy"],
        "this driver's NVML lacks the function"
    );

    let text = gpu(&[], &[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("Fake H100 80GB")
            && stdout.contains("250 / 700")
            && stdout.contains("SW_POWER_CAP"),
        "{stdout}"
    );
    assert!(
        stdout.contains("GPU 0: energy unavailable: this driver's NVML lacks the function"),
        "{stdout}"
    );
    assert!(stdout.contains("GPU 0: pid 4242 uses 9.0 GiB"), "{stdout}");
}

#[test]
fn watch_reads_repeatedly_and_a_lost_gpu_is_reported_not_fatal() {
    let r = readings(&gpu(
        &["--watch", "5ms", "--count", "3", "--format", "json"],
        &[],
    ));
    assert_eq!(r.len(), 3);
    // The GPU falls off the bus after its first power reading: the rest of that reading and
    // the whole next one say so, field by field, and the command still ends normally.
    let r = readings(&gpu(
        &["--watch", "5ms", "--count", "2", "--format", "json"],
        &[("FAKE_NVML_LOST_AFTER", "1")],
    ));
    assert_eq!(r.len(), 2);
    let first = &r[0]["gpus"][0];
    assert_eq!(first["power_w"].as_f64(), Some(250.0));
    assert_eq!(
        first["unavailable"]["temperature"],
        "the GPU is lost (fell off the bus)"
    );
    let second = &r[1]["gpus"][0];
    assert!(second["name"].is_null() && second["power_w"].is_null());
    assert_eq!(
        second["unavailable"]["name"],
        "the GPU is lost (fell off the bus)"
    );
}

#[test]
fn no_gpu_no_driver_and_no_library_each_say_so() {
    let r = readings(&gpu(&["--format", "json"], &[("FAKE_NVML_GPUS", "0")]));
    assert_eq!(r[0]["gpus"], serde_json::json!([]));

    let out = gpu(&[], &[("FAKE_NVML_FAIL_INIT", "1")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no GPU telemetry: NVML could not be loaded")
            && err.contains("the NVIDIA driver is not loaded"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let mut c = cmd(&["gpu"]);
    let out = c
        .env("LLM_LOADTEST_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/libnvidia-ml.so.1"), "{err}");

    let out = gpu(&["--watch", "0s"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// `run` against the simulator with GPUs sampled from the fake NVML: returns the saved result.
async fn sampled_run(env: &[(&str, &str)], extra: &[&str]) -> (Value, String) {
    let server = crate::support::sim(crate::support::fixed(20, 5)).await;
    let url = format!("http://{}", server.local_addr());
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("r.json");
    let mut args = vec![
        "run",
        "--server",
        &url,
        "--adapter",
        "vllm",
        "--model",
        "m",
        "--concurrency",
        "1,2",
        "--num-prompts",
        "6",
        "--input-len",
        "8",
        "--output-len",
        "16",
        "--ignore-eos",
        "--tokenizer",
        "cl100k_base",
        "--no-progress",
        "--no-save",
    ];
    args.extend_from_slice(extra);
    let mut c = cmd(&args);
    c.arg("--output").arg(&out_file);
    c.env("LLM_LOADTEST_NVML_LIB", fake_nvml());
    for (k, v) in env {
        c.env(k, v);
    }
    let stdout = crate::store_support::ok(c).await;
    server.shutdown().await.unwrap();
    let result = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    (result, stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_samples_the_gpus_and_reports_joules_per_output_token() {
    let (r, stdout) = sampled_run(&[], &["--gpu-interval", "10ms"]).await;
    let telemetry = &r["gpu"];
    assert_eq!(telemetry["names"], serde_json::json!(["Fake H100 80GB"]));
    assert!(telemetry["samples"].as_array().unwrap().len() >= 2);
    for level in r["levels"].as_array().unwrap() {
        let g = &level["gpu"];
        let gpu0 = &g["gpus"][0];
        // No energy counter in the fake: 250 W integrated over the level's window, exactly.
        assert_eq!(gpu0["energy_from"], "integrated power");
        let window = g["window_s"].as_f64().unwrap();
        let energy = g["energy_j"].as_f64().unwrap();
        assert!(
            (energy - 250.0 * window).abs() < 1e-9 * energy.max(1.0),
            "{energy} vs {window}"
        );
        assert_eq!(
            gpu0["mean_power_w"]
                .as_f64()
                .map(|p| (p * 1e6).round() / 1e6),
            Some(250.0)
        );
        // Every token of the level's requests, warm-up included: 6 × 16.
        assert_eq!(g["output_tokens"], 96);
        let per_token = g["joules_per_output_token"].as_f64().unwrap();
        assert!((per_token * 96.0 - energy).abs() < 1e-9 * energy.max(1.0));
        assert_eq!(gpu0["max_sm_utilization_pct"], 75);
        assert_eq!(gpu0["peak_memory_used_bytes"], 10u64 << 30);
    }
    assert!(
        stdout.contains("c=2: 1 GPU, 75 % SM, 250 W, peak 10.0 GiB")
            && stdout.contains("J per output token (integrated power)"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_lost_mid_run_costs_the_energy_not_the_run_and_no_gpu_samples_nothing() {
    let (r, stdout) = sampled_run(
        &[("FAKE_NVML_LOST_AFTER", "3")],
        &["--gpu-interval", "10ms"],
    )
    .await;
    assert_eq!(
        r["levels"].as_array().unwrap().len(),
        2,
        "the run completed"
    );
    let last = &r["levels"][1]["gpu"];
    assert!(last["energy_j"].is_null(), "{last}");
    assert!(
        last["gpus"][0]["energy_from"]
            .as_str()
            .unwrap()
            .starts_with("no energy")
    );
    assert!(
        stdout.contains("c=2: 1 GPU") && stdout.contains("no energy"),
        "{stdout}"
    );

    let (r, _) = sampled_run(&[], &["--no-gpu"]).await;
    assert!(
        r.get("gpu").is_none() && r["levels"][0].get("gpu").is_none(),
        "{r}"
    );
}

/// A DCGM exporter stand-in on 127.0.0.1: the fixture's text, with GPU 0's energy counter
/// 1 J higher at every scrape.
async fn dcgm_exporter() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dcgm/exporter.txt"),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        for scrape in 0u64.. {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let body = text.replace(
                "} 123456789",
                &format!("}} {}", 123_456_789 + 1000 * scrape),
            );
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_dcgm_exporter_is_read_into_the_same_samples() {
    let (exporter, task) = dcgm_exporter().await;
    let (r, stdout) =
        sampled_run(&[], &["--gpu-interval", "10ms", "--gpu-metrics", &exporter]).await;
    let telemetry = &r["gpu"];
    assert_eq!(telemetry["source"], format!("dcgm {exporter}"));
    assert_eq!(
        telemetry["names"],
        serde_json::json!(["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"])
    );
    for level in r["levels"].as_array().unwrap() {
        let g = &level["gpu"];
        assert_eq!(g["gpus"].as_array().unwrap().len(), 2, "{g}");
        let (gpu0, gpu1) = (&g["gpus"][0], &g["gpus"][1]);
        assert_eq!(gpu0["energy_from"], "counter");
        assert!(gpu0["energy_j"].as_f64().unwrap() > 0.0, "{gpu0}");
        // GPU 1's counter stands still in the stand-in: no energy is invented for it.
        assert_eq!(gpu1["energy_j"].as_f64(), Some(0.0));
        assert_eq!(gpu0["max_sm_utilization_pct"], 87);
        assert_eq!(gpu0["peak_memory_used_bytes"], 40_000u64 * 1024 * 1024);
    }
    assert!(stdout.contains("c=2: 2 GPUs, 86 % SM"), "{stdout}");
    task.abort();
}
