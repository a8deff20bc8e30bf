//! Requests the openai adapter builds.

use llm_loadtest_plugin_openai::OpenAi;
use llm_loadtest_sdk::serde_json::{Value, json};
use llm_loadtest_sdk::{Adapter, Framing, GenerationRequest, Header, Message, Prompt};

fn body(req: &GenerationRequest) -> Value {
    let http = OpenAi::build_request(req).unwrap();
    serde_json::from_slice(&http.body).unwrap()
}

#[test]
fn text_prompt_streams_to_completions() {
    let mut req = GenerationRequest::new("tiny-llama", Prompt::Text("Hello".into()), 16);
    req.temperature = Some(0.7);
    let http = OpenAi::build_request(&req).unwrap();
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/v1/completions");
    assert_eq!(http.framing, Framing::Sse);
    assert_eq!(
        http.headers,
        vec![Header::new("content-type", "application/json")]
    );
    assert_eq!(
        body(&req),
        json!({
            "model": "tiny-llama", "prompt": "Hello", "max_tokens": 16,
            "temperature": 0.7, "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[test]
fn chat_goes_to_chat_completions_and_nostream_is_whole_body() {
    let mut req = GenerationRequest::new(
        "m",
        Prompt::Chat(vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Hi"),
        ]),
        8,
    );
    req.stream = false;
    let http = OpenAi::build_request(&req).unwrap();
    assert_eq!(http.path, "/v1/chat/completions");
    assert_eq!(http.framing, Framing::WholeBody);
    assert_eq!(
        body(&req),
        json!({
            "model": "m", "max_tokens": 8, "stream": false,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"}
            ]
        })
    );
}

#[test]
fn ignore_eos_is_sent_when_asked_and_min_tokens_never() {
    // llama.cpp, vLLM and SGLang honour ignore_eos; min_tokens is vLLM's alone.
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.ignore_eos = true;
    req.min_tokens = Some(4);
    let b = body(&req);
    assert_eq!(b["ignore_eos"], true, "{b}");
    assert!(b.get("min_tokens").is_none(), "{b}");
    req.ignore_eos = false;
    assert!(body(&req).get("ignore_eos").is_none());
}

#[test]
fn extra_body_is_merged_and_must_be_an_object() {
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.extra_body =
        Some(r#"{"top_p": 0.9, "stream_options": {"continuous_usage_stats": true}}"#.into());
    let b = body(&req);
    assert_eq!(b["top_p"], json!(0.9));
    assert_eq!(
        b["stream_options"],
        json!({"include_usage": true, "continuous_usage_stats": true})
    );
    req.extra_body = Some("[1]".into());
    assert_eq!(
        OpenAi::build_request(&req).unwrap_err(),
        "extra_body must be a JSON object, found array (extra_body: [1])"
    );
}

#[test]
fn bad_temperature_is_rejected() {
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.temperature = Some(f32::NAN);
    let e = OpenAi::build_request(&req).unwrap_err();
    assert!(
        e.starts_with("temperature must be a finite number >= 0"),
        "{e}"
    );
}

#[test]
fn info_names_the_adapter() {
    let info = OpenAi::info();
    assert_eq!(info.name, "openai");
    assert_eq!(info.framing, Framing::Sse);
    assert_eq!(info.default_path, "/v1/completions");
    assert!(info.capabilities.iter().any(|c| c == "chat"));
}
