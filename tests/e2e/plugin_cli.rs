//! `llm-loadtest plugin ...` as a user runs it, and adapters built outside
//! this workspace (the external SDK crate and a `plugin new` crate) loaded
//! through the runtime.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use llm_loadtest::plugin::{Framing, replay};

use crate::plugin_support::{ROOMY_DEADLINE, misbehave_wasm, runtime_with};

fn bin(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm-loadtest"));
    // Keep `plugin list`/`test` from writing to the user's cache.
    cmd.env("XDG_CACHE_HOME", cache)
        .env_remove("LLM_LOADTEST_LOG");
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugin_check_describes_a_component_and_rejects_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin(tmp.path())
        .args(["plugin", "check", &misbehave_wasm()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("ok: misbehave 0.1.0 (adapter)"),
        "{stdout}"
    );
    // The SDK builds adapters for contract 0.2.
    assert!(stdout.contains("llm-loadtest:plugin@0.2.0"), "{stdout}");
    assert!(stdout.contains("framing:      sse"), "{stdout}");
    assert!(
        stdout.contains("exports:      llm-loadtest:plugin/adapter@0.2.0"),
        "{stdout}"
    );

    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "hello\n").unwrap();
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    for (file, says) in [
        (&notes, "not a WebAssembly file"),
        (&core, "a core WebAssembly module, not a component"),
    ] {
        let out = bin(tmp.path())
            .args(["plugin", "check"])
            .arg(file)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{stderr}"
        );
    }
}

#[test]
fn plugin_list_shows_the_embedded_plugins() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin(tmp.path()).args(["plugin", "list"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    // Adapters are built for contract 0.2 (feed-batch); policies stay on 0.1.
    for (name, kind, wit) in [
        ("openai", "adapter", "0.2.0"),
        ("vllm", "adapter", "0.2.0"),
        ("slo", "slo", "0.1.0"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{stdout}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], kind, "{line}");
        assert_eq!(cols[3], wit, "{line}");
    }
}

#[test]
fn plugin_test_replays_a_capture_like_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/wire/vllm-tiny-completions-stream.sse");
    let out = bin(tmp.path())
        .args(["plugin", "test", "vllm", "--replay"])
        .arg(&capture)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("sse framing"), "{stdout}");
    assert!(stdout.contains("[DONE] (handled by the host)"), "{stdout}");
    assert!(stdout.contains("content events: 15"), "{stdout}");
    assert!(
        stdout.contains("usage:          prompt 9, completion 16"),
        "{stdout}"
    );
    assert!(stdout.contains("finish reason:  length"), "{stdout}");
    assert!(stdout.contains("done:           yes"), "{stdout}");

    // The wrong framing is the user's to choose; the adapter then fails to
    // parse, and the command says so.
    let out = bin(tmp.path())
        .args([
            "plugin",
            "test",
            "vllm",
            "--framing",
            "whole-body",
            "--replay",
        ])
        .arg(&capture)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

/// Build a standalone crate for wasm32-wasip2 the way its author would,
/// into a target dir shared by these builds (the SDK compiles once).
fn build_external(crate_dir: &Path) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = workspace.join("target").join("ext");
    crate::support::cargo_build_outside(
        crate_dir,
        &["--target", "wasm32-wasip2", "--release"],
        &target_dir,
    );
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    let name = manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .unwrap()
        .trim_matches('"')
        .replace('-', "_");
    target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{name}.wasm"))
}

#[test]
fn adapters_built_outside_the_workspace_load_and_parse() {
    // One test builds both crates, one after the other: the second reuses
    // the first's SDK build, and no two cargo builds run at once.
    let external = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/external-adapter");
    let external_wasm = build_external(&external);

    let tmp = tempfile::tempdir().unwrap();
    let crate_dir = tmp.path().join("my-server-adapter");
    let out = bin(tmp.path())
        .args(["plugin", "new", "my-server-adapter", "--dir"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"my-server-adapter\""),
        "{manifest}"
    );
    assert!(!manifest.contains("{{"), "{manifest}");
    // A second `plugin new` into the same folder refuses to overwrite it.
    let again = bin(tmp.path())
        .args(["plugin", "new", "my-server-adapter", "--dir"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let new_wasm = build_external(&crate_dir);

    let rt = runtime_with(1, 64 * 1024 * 1024, ROOMY_DEADLINE);

    let tiny = rt.load_adapter(external_wasm.to_str().unwrap()).unwrap();
    assert_eq!(tiny.info().name, "tinyjsonl");
    assert_eq!(tiny.info().framing, Framing::Ndjson);
    let body = b"{\"t\": \"Hel\"}\n{\"think\": \"hm\"}\n{\"t\": \"lo\"}\n{\"end\": \"length\", \"in\": 9, \"out\": 16}\n";
    let (report, err) = replay(&tiny, Framing::Ndjson, body);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(report.content, "Helhmlo");
    assert_eq!(report.content_events, 3);
    assert_eq!(report.finish_reason.as_deref(), Some("length"));
    let usage = report.usage.unwrap();
    assert_eq!(
        (usage.prompt_tokens, usage.completion_tokens),
        (Some(9), Some(16))
    );

    let mine = rt.load_adapter(new_wasm.to_str().unwrap()).unwrap();
    assert_eq!(mine.info().name, "my-server-adapter");
    let body = b"{\"response\": \"Hel\", \"done\": false}\n{\"response\": \"lo\", \"done\": false}\n\
{\"response\": \"\", \"done\": true, \"done_reason\": \"stop\", \"prompt_eval_count\": 4, \"eval_count\": 2}\n";
    let (report, err) = replay(&mine, Framing::Ndjson, body);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(report.content, "Hello");
    assert_eq!(report.finish_reason.as_deref(), Some("stop"));
    assert!(report.done);

    // What a stranger does next: `run --adapter their.wasm` against the
    // simulator, which serves the template's example protocol.
    let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    let server = tokio_rt.block_on(crate::support::sim(crate::support::fixed(2, 1)));
    let url = format!("http://{}", server.local_addr());
    let out = bin(tmp.path())
        .args(["run", "--server", &url, "--model", "m", "--adapter"])
        .arg(&new_wasm)
        .args([
            "--concurrency",
            "1,3",
            "--num-prompts",
            "6",
            "--input-len",
            "16",
            "--output-len",
            "5",
            "--no-progress",
            "--no-save",
            "--output",
        ])
        .arg(tmp.path().join("result.json"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let result = llm_loadtest::result::RunResult::from_json(
        &std::fs::read_to_string(tmp.path().join("result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result.adapter.name, "my-server-adapter");
    for level in &result.levels {
        assert_eq!(
            (level.summary.completed, level.summary.failed),
            (6, 0),
            "{stderr}"
        );
        // Ollama has no ignore_eos: the simulated model may stop early.
        let tokens = level.summary.total_output_tokens;
        assert!((6..=30).contains(&tokens), "{tokens} output tokens");
    }
    // The template does not declare ignore-eos, so asking for it refuses the run up front.
    let out = bin(tmp.path())
        .args(["run", "--server", &url, "--model", "m", "--adapter"])
        .arg(&new_wasm)
        .args([
            "--num-prompts",
            "1",
            "--ignore-eos",
            "--no-progress",
            "--no-save",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("--ignore-eos"), "{stderr}");
    tokio_rt.block_on(server.shutdown()).unwrap();
}
