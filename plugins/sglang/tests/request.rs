//! Requests the sglang adapter builds.

use llm_loadtest_plugin_sglang::Sglang;
use llm_loadtest_sdk::serde_json::{Value, json};
use llm_loadtest_sdk::{Adapter, Framing, GenerationRequest, Header, Message, Prompt};

fn body(req: &GenerationRequest) -> Value {
    serde_json::from_slice(&Sglang::build_request(req).unwrap().body).unwrap()
}

#[test]
fn text_prompt_streams_with_sampling_params() {
    let mut req = GenerationRequest::new("ignored-model", Prompt::Text("Hello".into()), 16);
    req.ignore_eos = true;
    req.min_tokens = Some(16);
    req.temperature = Some(0.7);
    let http = Sglang::build_request(&req).unwrap();
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/generate");
    assert_eq!(http.framing, Framing::Sse);
    assert_eq!(
        http.headers,
        vec![Header::new("content-type", "application/json")]
    );
    assert_eq!(
        body(&req),
        json!({
            "text": "Hello",
            "sampling_params": {
                "max_new_tokens": 16, "min_new_tokens": 16,
                "ignore_eos": true, "temperature": 0.7
            },
            "stream": true
        })
    );
}

#[test]
fn unset_options_are_left_out_and_nostream_is_whole_body() {
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.stream = false;
    let http = Sglang::build_request(&req).unwrap();
    assert_eq!(http.framing, Framing::WholeBody);
    assert_eq!(
        body(&req),
        json!({"text": "x", "sampling_params": {"max_new_tokens": 4}, "stream": false})
    );
}

#[test]
fn chat_is_flattened_into_text() {
    let req = GenerationRequest::new(
        "m",
        Prompt::Chat(vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Hi"),
        ]),
        4,
    );
    assert_eq!(
        body(&req)["text"],
        json!("system: Be brief.\nuser: Hi\nassistant:")
    );
    let empty = GenerationRequest::new("m", Prompt::Chat(vec![]), 4);
    assert_eq!(
        Sglang::build_request(&empty).unwrap_err(),
        "sglang: a chat prompt needs at least one message"
    );
}

#[test]
fn extra_body_merges_into_sampling_params() {
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.extra_body = Some(r#"{"sampling_params": {"top_k": 5}, "rid": "r1"}"#.into());
    let b = body(&req);
    assert_eq!(
        b["sampling_params"],
        json!({"max_new_tokens": 4, "top_k": 5})
    );
    assert_eq!(b["rid"], json!("r1"));
    req.extra_body = Some("[1]".into());
    assert!(
        Sglang::build_request(&req)
            .unwrap_err()
            .contains("extra_body must be a JSON object")
    );
}

#[test]
fn bad_temperature_is_refused() {
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.temperature = Some(-1.0);
    assert_eq!(
        Sglang::build_request(&req).unwrap_err(),
        "temperature must be a finite number >= 0, got -1"
    );
}

#[test]
fn info_names_the_protocol() {
    let info = Sglang::info();
    assert_eq!(info.name, "sglang");
    assert_eq!(info.framing, Framing::Sse);
    assert_eq!(info.default_path, "/generate");
    for cap in ["ignore-eos", "min-tokens", "usage"] {
        assert!(info.capabilities.iter().any(|c| c == cap), "{cap}");
    }
}
