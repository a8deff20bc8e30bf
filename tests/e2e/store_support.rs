//! Helpers of the store tests: the binary with a data directory, and the
//! run ID it prints.
use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_llm-loadtest");

/// The binary, saving into `data_dir`, with the shared plugin cache.
pub fn cmd(data_dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("OPENAI_API_KEY")
        .env("LLM_LOADTEST_DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        .env(
            "LLM_LOADTEST_PLUGIN_CACHE",
            std::env::temp_dir().join("llm-loadtest-e2e-plugin-cache"),
        );
    c
}

/// Run to the end off the async threads; panics with stderr on failure.
pub async fn ok(mut c: Command) -> String {
    let out: Output = tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ID in `run saved as ID (...)`, `probes saved as run ID: ...` (`recommend`) or
/// `imported FILE as ID`.
pub fn saved_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("run saved as ")
                .or_else(|| l.strip_prefix("probes saved as run "))
                .or_else(|| l.split_once(" as ").map(|(_, rest)| rest))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .map(|id| id.trim_end_matches(':'))
        .unwrap_or_else(|| panic!("no run ID in: {stdout}"))
        .to_string()
}

/// Text without terminal colour codes.
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
