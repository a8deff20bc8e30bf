//! Requests the tgi adapter builds.

use llm_loadtest_plugin_tgi::Tgi;
use llm_loadtest_sdk::serde_json::{Value, json};
use llm_loadtest_sdk::{Adapter, Framing, GenerationRequest, Message, Prompt};

fn body(req: &GenerationRequest) -> Value {
    serde_json::from_slice(&Tgi::build_request(req).unwrap().body).unwrap()
}

#[test]
fn text_prompt_streams_with_details() {
    let mut req = GenerationRequest::new("ignored", Prompt::Text("Hello".into()), 16);
    req.temperature = Some(0.7);
    req.min_tokens = Some(16);
    let http = Tgi::build_request(&req).unwrap();
    assert_eq!(http.path, "/generate_stream");
    assert_eq!(http.framing, Framing::Sse);
    assert_eq!(
        body(&req),
        json!({
            "inputs": "Hello",
            "parameters": {
                "max_new_tokens": 16, "details": true,
                "temperature": 0.7, "do_sample": true
            }
        })
    );
}

#[test]
fn zero_temperature_is_greedy_by_default_and_nostream_is_generate() {
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.temperature = Some(0.0);
    req.ignore_eos = true;
    req.stream = false;
    let http = Tgi::build_request(&req).unwrap();
    assert_eq!(http.path, "/generate");
    assert_eq!(http.framing, Framing::WholeBody);
    assert_eq!(
        body(&req),
        json!({"inputs": "x", "parameters": {"max_new_tokens": 4, "details": true, "ignore_eos": true}})
    );
    req.temperature = Some(f32::NAN);
    assert!(
        Tgi::build_request(&req)
            .unwrap_err()
            .starts_with("temperature must be")
    );
}

#[test]
fn chat_is_flattened_and_extra_body_merges_into_parameters() {
    let mut req = GenerationRequest::new("m", Prompt::Chat(vec![Message::new("user", "Hi")]), 4);
    req.extra_body = Some(r#"{"parameters": {"top_k": 5, "details": false}}"#.into());
    let b = body(&req);
    assert_eq!(b["inputs"], json!("user: Hi\nassistant:"));
    assert_eq!(
        b["parameters"],
        json!({"max_new_tokens": 4, "details": false, "top_k": 5})
    );
}

#[test]
fn info_names_the_protocol() {
    let info = Tgi::info();
    assert_eq!(info.name, "tgi");
    assert_eq!(info.default_path, "/generate_stream");
}
