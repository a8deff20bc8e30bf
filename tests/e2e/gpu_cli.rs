//! `llm-loadtest gpu` against a scripted fake NVML (`tests/fake-nvml`), so the GPU code runs on
//! machines without a GPU: every field read, a function an old driver lacks, a GPU lost between
//! readings, no GPU, a driver that fails to initialise, and no library at all.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use crate::run_cli::cmd;

/// Builds the fake NVML once per test process: a dependency-free cdylib, seconds to build.
fn fake_nvml() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target_dir = workspace.join("target").join("fake-nvml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut c = Command::new(cargo);
        c.current_dir(workspace.join("tests").join("fake-nvml"))
            .args(["build", "--release", "--target-dir"])
            .arg(&target_dir);
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
        ] {
            c.env_remove(var);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "building tests/fake-nvml failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
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
