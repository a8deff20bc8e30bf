//! The adapter conformance battery: every embedded adapter passes it, the
//! misbehaving guest and a memory-starved adapter fail where they should
//! while the host carries on, and `plugin check --conformance` exits
//! accordingly.

use std::path::Path;
use std::process::Command;

use llm_loadtest::conformance::{ConformanceReport, Outcome, run_battery, run_battery_with_sample};
use llm_loadtest::plugin::{Event, PluginKind, TokenDelta, embedded_plugins};

use crate::plugin_support::{ROOMY_DEADLINE, misbehave_wasm, misbehave_with, runtime_with};

const MIB: usize = 1024 * 1024;

/// The outcome of every case but `protocol`.
fn stream_cases(report: &ConformanceReport) -> impl Iterator<Item = (&str, &str, &Outcome)> {
    report
        .cases
        .iter()
        .filter(|c| c.name != "protocol")
        .map(|c| (c.protocol.as_str(), c.name, &c.outcome))
}

#[test]
fn every_embedded_adapter_passes_the_battery() {
    // A roomy deadline: the 1 MiB case must not race a busy machine.
    let rt = runtime_with(1, 64 * MIB, ROOMY_DEADLINE);
    let adapters: Vec<&str> = embedded_plugins()
        .iter()
        .filter(|p| p.kind == PluginKind::Adapter)
        .map(|p| p.name)
        .collect();
    for name in ["openai", "vllm"] {
        assert!(
            adapters.contains(&name),
            "{name} is not embedded: {adapters:?}"
        );
    }
    for name in adapters {
        let adapter = rt.load_adapter(name).unwrap();
        let report = run_battery(&adapter);
        assert!(report.passed(), "{name} fails the battery:\n{report}");
        assert_eq!(
            report.unknown_protocol_cases(),
            0,
            "{name}'s protocol was not recognised:\n{report}"
        );
        let protocol = report.case("-", "protocol").unwrap();
        assert_eq!(protocol.outcome, Outcome::Pass, "{report}");
        // Each dialect runs all ten cases; at most two are n/a (role-only
        // and usage-only, where the protocol has neither).
        let dialects = (report.cases.len() - 1) / 10;
        assert!(
            dialects >= 1 && report.cases.len() == 1 + 10 * dialects,
            "{report}"
        );
        // The protocol case and at least eight per dialect pass.
        assert!(
            report.count(&Outcome::Pass) > 8 * dialects,
            "{name}: too few cases ran:\n{report}"
        );
        for must_run in [
            "normal-stream",
            "split-every-byte",
            "utf8-split",
            "one-mib-line",
            "no-finish",
            "garbage",
        ] {
            assert!(
                report
                    .cases
                    .iter()
                    .any(|c| c.name == must_run && c.outcome == Outcome::Pass),
                "{name}: {must_run} did not run:\n{report}"
            );
        }
    }
}

#[test]
fn the_misbehaving_guest_fails_the_battery_and_the_host_carries_on() {
    let adapter = misbehave_with(1, 64 * MIB, ROOMY_DEADLINE);
    let report = run_battery(&adapter);
    assert!(!report.passed(), "{report}");
    // It posts to /v1/completions, so it is tested as an OpenAI adapter,
    // and it answers every OpenAI chunk with an err.
    assert_eq!(
        report.case("-", "protocol").unwrap().outcome,
        Outcome::Pass,
        "{report}"
    );
    for (protocol, name, outcome) in stream_cases(&report) {
        assert_eq!(protocol, "openai-completions", "{report}");
        let want = if name == "role-only-chunk" {
            Outcome::NotApplicable
        } else {
            Outcome::Fail
        };
        assert_eq!(outcome, &want, "{name}:\n{report}");
    }
    let normal = report.case("openai-completions", "normal-stream").unwrap();
    assert!(
        normal.detail.starts_with("message 0 returned an error")
            && normal.detail.contains("unknown keyword"),
        "{}",
        normal.detail
    );
    // The garbage case fails on the valid message before the garbage: an
    // err on garbage alone is not enough.
    let garbage = report.case("openai-completions", "garbage").unwrap();
    assert!(
        garbage
            .detail
            .starts_with("expected err from feed on message 1"),
        "{}",
        garbage.detail
    );
    assert!(!report.to_string().contains("trapped"), "{report}");
    // The adapter still works.
    let mut parser = adapter.new_parser().unwrap();
    assert_eq!(
        parser.feed(b"ok").unwrap(),
        [Event::Token(TokenDelta {
            text: "ok".into(),
            tokens: None
        })]
    );
}

#[test]
fn a_memory_starved_adapter_fails_only_the_long_line() {
    // Room for the openai adapter's ordinary streams, not for a 1 MiB line
    // (the message, its parsed text and the returned event): the memory cap
    // traps those calls, the pool replaces the instance, and the cases
    // after it run on the new one.
    let rt = runtime_with(1, 3 * MIB, ROOMY_DEADLINE);
    let adapter = rt.load_adapter("openai").unwrap();
    let report = run_battery(&adapter);
    for (protocol, name, outcome) in stream_cases(&report) {
        let case = report.case(protocol, name).unwrap();
        match name {
            "one-mib-line" => {
                assert_eq!(outcome, &Outcome::Fail, "{report}");
                assert!(
                    case.detail.contains("trapped") && case.detail.contains("memory limit"),
                    "{}",
                    case.detail
                );
            }
            _ => assert_ne!(outcome, &Outcome::Fail, "{report}"),
        }
    }
    let (_, replaced) = adapter.slot_stats()[0];
    assert!(replaced >= 1, "the instance was never replaced");
}

fn bin(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm-loadtest"));
    cmd.env("XDG_CACHE_HOME", cache)
        .env_remove("LLM_LOADTEST_LOG");
    cmd
}

#[test]
fn plugin_check_conformance_exits_by_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    let run_with = |spec: &str, extra: &[&str]| {
        let out = bin(tmp.path())
            .args(["plugin", "check", "--conformance", spec])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let run = |spec: &str| run_with(spec, &[]);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/wire/vllm-tiny-completions-stream.sse")
        .display()
        .to_string();
    let (code, stdout, stderr) = run_with("openai", &["--sample", &sample]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("sample              sample-every-split  identical events at"),
        "{stdout}"
    );
    assert!(
        stdout.contains("conformance battery: openai 0.1.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("text prompt: POST /v1/completions (sse framing) -> openai-completions"),
        "{stdout}"
    );
    let pass_lines = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("pass "))
        .count();
    assert!(pass_lines >= 19, "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains(", 0 failed,"), "{stdout}");

    let (code, stdout, stderr) = run(&misbehave_wasm());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let fails = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("FAIL "))
        .count();
    assert_eq!(fails, 9, "{stdout}");
    assert!(
        stdout.contains("result: 1 passed, 9 failed, 1 not applicable"),
        "{stdout}"
    );

    // The battery is for adapters.
    let (code, stdout, stderr) = run("slo");
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("--conformance applies to adapters"),
        "{stderr}"
    );
}

/// The outcome of each `sample` case.
fn sample_cases(report: &ConformanceReport) -> Vec<(&str, Outcome, &str)> {
    report
        .cases
        .iter()
        .filter(|c| c.protocol == "sample")
        .map(|c| (c.name, c.outcome.clone(), c.detail.as_str()))
        .collect()
}

#[test]
fn a_recorded_sample_gets_the_protocol_free_cases() {
    let rt = runtime_with(1, 64 * MIB, ROOMY_DEADLINE);
    let openai = rt.load_adapter("openai").unwrap();
    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/wire")
                .join(name),
        )
        .unwrap()
    };
    // A real vLLM stream (a UTF-8 character split across tokens among them): all pass.
    let report = run_battery_with_sample(&openai, &fixture("vllm-tiny-completions-stream.sse"));
    let cases = sample_cases(&report);
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        [
            "sample-whole",
            "sample-every-split",
            "sample-one-mib",
            "sample-truncated",
            "sample-garbage"
        ]
    );
    for (name, outcome, detail) in &cases {
        assert_eq!(*outcome, Outcome::Pass, "{name}: {detail}");
    }
    assert!(report.passed());

    // llama.cpp's native /completion stream is not OpenAI's: the adapter reads nothing from
    // it, said as a failed sample, and the cases built on it are not run.
    let report = run_battery_with_sample(
        &openai,
        &fixture("llama-tiny-native-completion-stream.not-openai-sse"),
    );
    let cases = sample_cases(&report);
    assert_eq!(cases[0].1, Outcome::Fail, "{:?}", cases[0]);
    assert!(
        cases[0]
            .2
            .contains("the adapter read nothing from the 9 messages"),
        "{}",
        cases[0].2
    );
    assert!(cases[1..].iter().all(|c| c.1 == Outcome::NotApplicable));
    assert!(!report.passed());

    // An adapter that traps on a word in the stream fails the sample where it traps.
    let bad = misbehave_with(1, 64 * MIB, ROOMY_DEADLINE);
    let report = run_battery_with_sample(&bad, b"data: panic\n\n");
    let whole = &sample_cases(&report)[0];
    assert_eq!(whole.1, Outcome::Fail);
    assert!(whole.2.contains("trapped"), "{}", whole.2);
}
