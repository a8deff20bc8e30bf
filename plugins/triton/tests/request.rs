//! Requests the triton adapter builds.

use llm_loadtest_plugin_triton::Triton;
use llm_loadtest_sdk::serde_json::{Value, json};
use llm_loadtest_sdk::{Adapter, Framing, GenerationRequest, Message, Prompt};

fn body(req: &GenerationRequest) -> Value {
    serde_json::from_slice(&Triton::build_request(req).unwrap().body).unwrap()
}

#[test]
fn text_prompt_streams_to_generate_stream() {
    let mut req = GenerationRequest::new("ensemble", Prompt::Text("What is ML?".into()), 16);
    req.ignore_eos = true;
    req.min_tokens = Some(16);
    req.temperature = Some(0.7);
    let http = Triton::build_request(&req).unwrap();
    assert_eq!(http.path, "/v2/models/ensemble/generate_stream");
    assert_eq!(http.framing, Framing::Sse);
    assert_eq!(
        body(&req),
        json!({
            "text_input": "What is ML?", "max_tokens": 16, "stream": true,
            "exclude_input_in_output": true, "temperature": 0.7,
            "min_tokens": 16, "ignore_eos": true
        })
    );
}

#[test]
fn nostream_goes_to_generate_and_unset_options_are_left_out() {
    let mut req = GenerationRequest::new("my model/v2", Prompt::Text("x".into()), 4);
    req.stream = false;
    let http = Triton::build_request(&req).unwrap();
    assert_eq!(http.path, "/v2/models/my%20model%2Fv2/generate");
    assert_eq!(http.framing, Framing::WholeBody);
    assert_eq!(
        body(&req),
        json!({"text_input": "x", "max_tokens": 4, "stream": false, "exclude_input_in_output": true})
    );
}

#[test]
fn chat_is_flattened_and_the_model_is_required() {
    let req = GenerationRequest::new("m", Prompt::Chat(vec![Message::new("user", "Hi")]), 4);
    assert_eq!(body(&req)["text_input"], json!("user: Hi\nassistant:"));
    let req = GenerationRequest::new("", Prompt::Text("x".into()), 4);
    assert!(
        Triton::build_request(&req)
            .unwrap_err()
            .contains("cannot be empty")
    );
}

#[test]
fn extra_body_adds_backend_fields() {
    let mut req = GenerationRequest::new("vllm_model", Prompt::Text("x".into()), 4);
    req.extra_body = Some(
        r#"{"sampling_parameters": "{\"max_tokens\": 4}", "parameters": {"top_k": 1}}"#.into(),
    );
    let b = body(&req);
    assert_eq!(b["sampling_parameters"], json!("{\"max_tokens\": 4}"));
    assert_eq!(b["parameters"], json!({"top_k": 1}));
}

#[test]
fn info_names_the_protocol() {
    let info = Triton::info();
    assert_eq!(info.name, "triton");
    assert_eq!(info.default_path, "/v2/models/{model}/generate_stream");
}
