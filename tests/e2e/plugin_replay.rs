//! Real wire captures replayed through the embedded adapters, checked
//! against what the captured JSON itself says (read here with serde_json,
//! independently of the adapters), and the embedded SLO policy.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use llm_loadtest::plugin::{
    Adapter, Framing, Measurement, Objective, PluginError, Runtime, RuntimeConfig, Usage, replay,
};
use serde_json::Value;

use crate::plugin_support::ROOMY_DEADLINE;

fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(std::env::temp_dir().join("llm-loadtest-e2e-plugin-tests-cache")),
            pool_size: 2,
            // Every call here is expected to succeed: not the default 1 s,
            // which a loaded machine running a debug build could come near.
            call_deadline: ROOMY_DEADLINE,
            ..RuntimeConfig::default()
        })
        .unwrap()
    })
    .clone()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wire")
}

/// What a capture says, read straight from its JSON.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    content: String,
    content_events: usize,
    usage: Option<(Option<u32>, Option<u32>)>,
    finish: Option<String>,
}

fn u32_at(v: &Value, ptr: &str) -> Option<u32> {
    v.pointer(ptr).and_then(Value::as_u64).map(|n| n as u32)
}

fn absorb(e: &mut Expected, v: &Value) {
    if let Some(choice) = v.pointer("/choices/0") {
        let text = [
            "/text",
            "/delta/content",
            "/message/content",
            "/delta/reasoning_content",
        ]
        .iter()
        .filter_map(|p| choice.pointer(p).and_then(Value::as_str))
        .collect::<String>();
        if !text.is_empty() {
            e.content.push_str(&text);
            e.content_events += 1;
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            e.finish = Some(f.to_owned());
        }
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        e.usage = Some((u32_at(u, "/prompt_tokens"), u32_at(u, "/completion_tokens")));
    }
}

fn expected_sse(body: &str) -> Expected {
    let mut e = Expected::default();
    for line in body.lines() {
        if let Some(data) = line.strip_prefix("data: ")
            && data != "[DONE]"
        {
            absorb(&mut e, &serde_json::from_str(data).unwrap());
        }
    }
    e
}

fn actual(adapter: &Adapter, framing: Framing, body: &[u8]) -> Expected {
    let (report, err) = replay(adapter, framing, body);
    assert!(err.is_none(), "{err:?}");
    assert!(
        report.stream_errors.is_empty(),
        "{:?}",
        report.stream_errors
    );
    Expected {
        content: report.content,
        content_events: report.content_events,
        usage: report
            .usage
            .map(|u: Usage| (u.prompt_tokens, u.completion_tokens)),
        finish: report.finish_reason,
    }
}

fn captures(suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *{suffix} fixtures");
    files
}

#[test]
fn streamed_captures_parse_to_what_they_contain() {
    for name in ["openai", "vllm"] {
        let adapter = runtime().load_adapter(name).unwrap();
        assert_eq!(adapter.identity().source, "embedded");
        for file in captures(".sse") {
            let body = std::fs::read(&file).unwrap();
            let want = expected_sse(&String::from_utf8_lossy(&body));
            let got = actual(&adapter, Framing::Sse, &body);
            assert_eq!(got, want, "{name} on {}", file.display());
            assert!(!got.content.is_empty(), "{}", file.display());
        }
    }
}

#[test]
fn whole_body_captures_parse_to_what_they_contain() {
    for name in ["openai", "vllm"] {
        let adapter = runtime().load_adapter(name).unwrap();
        for file in captures("-nostream.json") {
            let body = std::fs::read(&file).unwrap();
            let mut want = Expected::default();
            absorb(&mut want, &serde_json::from_slice(&body).unwrap());
            let got = actual(&adapter, Framing::WholeBody, &body);
            assert_eq!(got, want, "{name} on {}", file.display());
        }
    }
}

#[test]
fn error_bodies_become_error_events_or_parse_errors() {
    let adapter = runtime().load_adapter("vllm").unwrap();
    let mut files = captures("-badjson.json");
    files.extend(captures(".body"));
    for file in files {
        let body = std::fs::read(&file).unwrap();
        let (report, err) = replay(&adapter, Framing::WholeBody, &body);
        let reported = !report.stream_errors.is_empty()
            || matches!(&err, Some(llm_loadtest::plugin::ReplayError::Plugin(e)) if e.class() == "parse");
        assert!(reported, "{}: {report:?} {err:?}", file.display());
    }
}

#[test]
fn the_embedded_slo_policy_judges_requests() {
    let policy = runtime().load_slo_policy("slo").unwrap();
    let objectives = vec![
        Objective {
            metric: "ttft".into(),
            threshold_ms: 100.0,
        },
        Objective {
            metric: "itl".into(),
            threshold_ms: 50.0,
        },
    ];
    policy.check_objectives(&objectives).unwrap();
    let err = policy
        .check_objectives(&[Objective {
            metric: "latency".into(),
            threshold_ms: 1.0,
        }])
        .unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::Guest {
                call: "check-objectives",
                ..
            }
        ),
        "{err}"
    );

    let fast = Measurement {
        succeeded: true,
        ttft_ms: Some(40.0),
        itl_ms: vec![10.0, 20.0],
        input_tokens: 10,
        output_tokens: 3,
        ..Measurement::default()
    };
    let verdict = policy.evaluate(&fast, &objectives).unwrap();
    assert!(verdict.good, "{verdict:?}");
    let slow_gap = Measurement {
        itl_ms: vec![10.0, 80.0],
        ..fast
    };
    let verdict = policy.evaluate(&slow_gap, &objectives).unwrap();
    assert!(!verdict.good);
    assert_eq!(verdict.reasons.len(), 1, "{verdict:?}");
}
