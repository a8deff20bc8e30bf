//! Components built against older contracts load and work unchanged: the bytes in
//! tests/fixtures/components were built at the commits their names give (5585908, before 0.1
//! grew `tokenizer` and `recommend-policy`; cadd12c, the last 0.1 build of the openai adapter,
//! before 0.2's `feed-batch`) and are never rebuilt.
use std::path::Path;

use llm_loadtest::dataset::Endpoint;
use llm_loadtest::plugin::{
    Batch, Framing, LoadedPlugin, Measurement, Objective, PluginError, replay,
};

use crate::plugin_support::{ROOMY_DEADLINE, runtime_with};
use crate::support::{fixed, run, sim, spec};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/components")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn an_adapter_built_before_the_contract_grew_loads_and_parses() {
    let rt = runtime_with(1, 64 * 1024 * 1024, ROOMY_DEADLINE);
    let path = fixture("tinyjsonl-adapter-wit0.1-5585908.wasm");
    let tiny = rt.load_adapter(&path).unwrap();
    assert_eq!(tiny.info().name, "tinyjsonl");
    assert_eq!(tiny.identity().wit_version, "0.1.0");
    assert!(!tiny.can_tokenize(), "it exports adapter alone");
    let body = b"{\"t\": \"Hel\"}\n{\"t\": \"lo\"}\n{\"end\": \"stop\", \"in\": 3, \"out\": 2}\n";
    let (report, err) = replay(&tiny, Framing::Ndjson, body);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(report.content, "Hello");
    assert_eq!(report.finish_reason.as_deref(), Some("stop"));
    // Asked for as the kind it is not, it is refused by name, not trapped on.
    let err = rt.load_recommend_policy(&path).unwrap_err();
    assert!(matches!(err, PluginError::WrongKind { .. }), "{err}");
}

#[test]
fn an_slo_policy_built_before_the_contract_grew_loads_and_judges() {
    let rt = runtime_with(1, 64 * 1024 * 1024, ROOMY_DEADLINE);
    let path = fixture("slo-policy-wit0.1-5585908.wasm");
    let LoadedPlugin::Slo(policy) = rt.load_any(&path).unwrap() else {
        panic!("{path} loads as an SLO policy");
    };
    let objectives = [Objective {
        metric: "ttft".into(),
        threshold_ms: 100.0,
    }];
    policy.check_objectives(&objectives).unwrap();
    let fast = Measurement {
        succeeded: true,
        ttft_ms: Some(40.0),
        output_tokens: 2,
        ..Measurement::default()
    };
    assert!(policy.evaluate(&fast, &objectives).unwrap().good);
    let slow = Measurement {
        ttft_ms: Some(400.0),
        ..fast
    };
    let verdict = policy.evaluate(&slow, &objectives).unwrap();
    assert!(!verdict.good && verdict.reasons.len() == 1, "{verdict:?}");
}

/// The openai adapter as built for 0.1 (one `feed` per message) at cadd12c.
const OPENAI_0_1: &str = "openai-adapter-wit0.1-cadd12c.wasm";

fn wire(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/wire")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `data:` payloads of a captured SSE stream, without `[DONE]`.
fn payloads(sse: &[u8]) -> Vec<Vec<u8>> {
    String::from_utf8_lossy(sse)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|p| *p != "[DONE]")
        .map(|p| p.as_bytes().to_vec())
        .collect()
}

#[test]
fn a_0_1_adapter_and_its_0_2_build_read_batches_alike() {
    let rt = runtime_with(1, 64 * 1024 * 1024, ROOMY_DEADLINE);
    let old = rt.load_adapter(&fixture(OPENAI_0_1)).unwrap();
    let new = rt.load_adapter("openai").unwrap();
    assert_eq!(old.identity().wit_version, "0.1.0");
    assert_eq!(new.identity().wit_version, "0.2.0");
    assert!(old.exports().iter().any(|e| e.ends_with("adapter@0.1.0")));
    assert!(new.exports().iter().any(|e| e.ends_with("adapter@0.2.0")));
    // Both export 0.1's tokenizer beside their adapter.
    assert!(old.can_tokenize() && new.can_tokenize());

    // A real vLLM stream in batches of 1, 2, 3, ... messages, then a batch whose third message
    // is not JSON: the same events per message from both, and the same stop.
    let messages = payloads(&wire("vllm-tiny-completions-128.sse"));
    assert!(messages.len() >= 6, "{} messages", messages.len());
    let mut bad = messages[..4].to_vec();
    bad[2] = b"{not json".to_vec();
    let mut seen = Vec::new();
    for adapter in [&old, &new] {
        let mut parser = adapter.new_parser().unwrap();
        let mut per_message = Vec::new();
        let mut rest = &messages[..];
        let mut size = 1;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(size.min(rest.len()));
            let mut batch = Batch::default();
            now.iter().for_each(|m| batch.push(m));
            let fed = parser.feed_batch(&batch).unwrap();
            assert!(fed.error.is_none(), "{:?}", fed.error);
            assert_eq!(fed.ends.len(), now.len());
            per_message.extend(fed.messages().map(<[_]>::to_vec));
            rest = later;
            size += 1;
        }
        let mut batch = Batch::default();
        bad.iter().for_each(|m| batch.push(m));
        let fed = adapter.new_parser().unwrap().feed_batch(&batch).unwrap();
        assert_eq!(fed.ends.len(), 2, "the two messages before the bad one");
        let before: Vec<_> = fed.messages().map(<[_]>::to_vec).collect();
        let err = fed.error.expect("the third message fails").to_string();
        assert!(err.contains("not an OpenAI response chunk"), "{err}");
        seen.push((per_message, before));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0].0.len(), messages.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_adapter_runs_a_load_test_like_its_0_2_build() {
    let server = sim(fixed(5, 1)).await;
    let mut counts = Vec::new();
    for adapter in [fixture(OPENAI_0_1), "openai".to_string()] {
        let mut sp = spec(&server, 2, 6, 8);
        sp.adapter = adapter.clone();
        sp.endpoint = Endpoint::Chat;
        let out = run(&sp).await;
        let s = &out.result.levels[0].summary;
        assert_eq!((s.completed, s.failed), (6, 0), "{adapter}: {:?}", s.errors);
        let per_request: Vec<_> = out.records[0]
            .iter()
            .map(|r| (r.content_events, r.output_tokens_server, r.itl_ms.len()))
            .collect();
        assert!(
            per_request
                .iter()
                .all(|&(events, server, itl)| events == 8 && server == Some(8) && itl == 7)
        );
        counts.push((out.result.adapter.wit_version.clone(), per_request));
    }
    assert_eq!(counts[0].0, "0.1.0");
    assert_eq!(counts[1].0, "0.2.0");
    assert_eq!(counts[0].1, counts[1].1);
    server.shutdown().await.unwrap();
}
