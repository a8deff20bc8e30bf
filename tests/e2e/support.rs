//! Shared test setup: the simulator in-process on 127.0.0.1:0, one plugin
//! runtime per test binary, and a baseline run against the simulator.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use llm_loadtest::dataset::DatasetSpec;
use llm_loadtest::plan::{Bound, LevelPlan, Load, Warmup};
use llm_loadtest::plugin::{Runtime, RuntimeConfig};
use llm_loadtest::runner::{self, RunOutput, RunSpec};
use llm_loadtest::tokenize::{TokenizerChoice, TokenizerKind};
use llm_loadtest_sim::{SimConfig, SimHandle};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One runtime for the whole binary: plugins compile once.
pub fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        let dir = std::env::temp_dir().join("llm-loadtest-e2e-plugin-cache");
        Runtime::new(RuntimeConfig {
            cache_dir: Some(dir),
            // The runs' plugin calls are expected to succeed: not the
            // default 1 s, which a loaded machine could come near.
            call_deadline: crate::plugin_support::ROOMY_DEADLINE,
            ..RuntimeConfig::default()
        })
        .expect("plugin runtime starts")
    })
    .clone()
}

pub async fn sim(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    llm_loadtest_sim::start(config, listener).await.unwrap()
}

pub fn fixed(ttft_ms: u64, itl_ms: u64) -> SimConfig {
    SimConfig::fixed(
        Duration::from_millis(ttft_ms),
        Duration::from_millis(itl_ms),
    )
}

/// A closed-loop run of `n` requests at concurrency `c`, `output` tokens each.
pub fn spec(server: &SimHandle, c: u32, n: u64, output: u32) -> RunSpec {
    spec_at(&format!("http://{}", server.local_addr()), c, n, output)
}

/// As [`spec`], against the server at `url` (any server, not only the simulator).
pub fn spec_at(url: &str, c: u32, n: u64, output: u32) -> RunSpec {
    RunSpec {
        model: Some("sim-llama".into()),
        levels: vec![LevelPlan {
            load: Load::Concurrency { concurrency: c },
            bound: Bound::Requests(n),
            warmup: Warmup::None,
            seed: 1,
        }],
        dataset: DatasetSpec::Synthetic {
            input_len: 32,
            output_len: output,
            range_ratio: 0.0,
            prefix_len: 0,
        },
        seed: 1,
        // These tests count the simulator's requests and connections exactly, so prompts are
        // sized locally; sizing by the server (the default) is tested in `run_tokenize`.
        tokenizer: TokenizerChoice::Bpe(TokenizerKind::Cl100kBase),
        probe_server_version: false,
        ignore_eos: true,
        // These requests take at most a few hundred ms of simulated time:
        // only a hung request comes near 5 min (tests that need a timeout
        // to fire set their own).
        timeout: Duration::from_secs(300),
        save_requests: true,
        ..RunSpec::new(url, "vllm")
    }
}

pub async fn run(spec: &RunSpec) -> RunOutput {
    let (tx, _rx) = broadcast::channel(64);
    runner::execute(spec, &runtime(), tx, CancellationToken::new())
        .await
        .expect("the run starts")
}

/// Builds the crate in `crate_dir`, which is not a member of this workspace, as its author would:
/// `cargo build` with `args`, into `target_dir`, without the settings the outer cargo passes
/// down (flags, target dir, target, wrapper). Panics with cargo's stderr when it fails.
pub fn cargo_build_outside(
    crate_dir: &std::path::Path,
    args: &[&str],
    target_dir: &std::path::Path,
) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(crate_dir)
        .arg("build")
        .args(args)
        .arg("--target-dir")
        .arg(target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        crate_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads one request: its head, then the body its Content-Length gives.
pub async fn read_request(conn: &mut tokio::net::TcpStream) {
    assert!(
        next_request(conn).await,
        "the client closed before its request was whole"
    );
}

/// Reads one request (head, then the body its Content-Length gives); false when the client
/// closed the connection instead.
pub async fn next_request(conn: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::io::AsyncReadExt::read(conn, &mut chunk)
            .await
            .unwrap_or(0);
        if n == 0 {
            return false;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + length {
            return true;
        }
    }
}
