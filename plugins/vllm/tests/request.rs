//! Requests the vllm adapter builds.

use llm_loadtest_plugin_vllm::Vllm;
use llm_loadtest_sdk::serde_json::{Value, json};
use llm_loadtest_sdk::{Adapter, Framing, GenerationRequest, Message, Prompt};

fn body(req: &GenerationRequest) -> Value {
    serde_json::from_slice(&Vllm::build_request(req).unwrap().body).unwrap()
}

#[test]
fn ignore_eos_and_min_tokens_are_sent() {
    let mut req = GenerationRequest::new("tiny-llama", Prompt::Text("Hello".into()), 16);
    req.ignore_eos = true;
    req.min_tokens = Some(16);
    let http = Vllm::build_request(&req).unwrap();
    assert_eq!(http.path, "/v1/completions");
    assert_eq!(http.framing, Framing::Sse);
    assert_eq!(
        body(&req),
        json!({
            "model": "tiny-llama", "prompt": "Hello", "max_tokens": 16, "stream": true,
            "stream_options": {"include_usage": true},
            "ignore_eos": true, "min_tokens": 16
        })
    );
}

#[test]
fn unset_extensions_are_left_out() {
    let req = GenerationRequest::new("m", Prompt::Chat(vec![Message::new("user", "Hi")]), 4);
    let b = body(&req);
    assert_eq!(
        Vllm::build_request(&req).unwrap().path,
        "/v1/chat/completions"
    );
    assert!(
        b.get("ignore_eos").is_none() && b.get("min_tokens").is_none(),
        "{b}"
    );
}

#[test]
fn extra_body_can_override_extensions() {
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.ignore_eos = true;
    req.extra_body = Some(r#"{"ignore_eos": false, "top_k": 5}"#.into());
    let b = body(&req);
    assert_eq!(b["ignore_eos"], json!(false));
    assert_eq!(b["top_k"], json!(5));
}

#[test]
fn info_lists_the_extensions() {
    let info = Vllm::info();
    assert_eq!(info.name, "vllm");
    for cap in ["ignore-eos", "min-tokens", "completions", "chat", "usage"] {
        assert!(info.capabilities.iter().any(|c| c == cap), "{cap}");
    }
}
