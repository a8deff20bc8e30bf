//! Components built against the 0.1 contract before it grew (`tokenizer`, `recommend-policy`)
//! load and work unchanged: the bytes in tests/fixtures/components were built at commit 5585908
//! and are never rebuilt.
use std::path::Path;

use llm_loadtest::plugin::{Framing, LoadedPlugin, Measurement, Objective, PluginError, replay};

use crate::plugin_support::{ROOMY_DEADLINE, runtime_with};

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
