//! Requests the ollama adapter builds.

use llm_loadtest_plugin_ollama::Ollama;
use llm_loadtest_sdk::serde_json::{Value, json};
use llm_loadtest_sdk::{Adapter, Framing, GenerationRequest, Message, Prompt};

fn body(req: &GenerationRequest) -> Value {
    serde_json::from_slice(&Ollama::build_request(req).unwrap().body).unwrap()
}

#[test]
fn text_prompt_streams_to_generate() {
    let mut req = GenerationRequest::new("llama3.2", Prompt::Text("Why?".into()), 16);
    req.temperature = Some(0.7);
    req.min_tokens = Some(16);
    let http = Ollama::build_request(&req).unwrap();
    assert_eq!(http.path, "/api/generate");
    assert_eq!(http.framing, Framing::Ndjson);
    assert_eq!(
        body(&req),
        json!({
            "model": "llama3.2", "prompt": "Why?", "stream": true,
            "options": {"num_predict": 16, "temperature": 0.7}
        })
    );
}

#[test]
fn chat_goes_to_chat_and_nostream_is_whole_body() {
    let mut req = GenerationRequest::new(
        "m",
        Prompt::Chat(vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Hi"),
        ]),
        8,
    );
    req.stream = false;
    req.ignore_eos = true;
    let http = Ollama::build_request(&req).unwrap();
    assert_eq!(http.path, "/api/chat");
    assert_eq!(http.framing, Framing::WholeBody);
    assert_eq!(
        body(&req),
        json!({
            "model": "m", "stream": false,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"}
            ],
            "options": {"num_predict": 8, "ignore_eos": true}
        })
    );
}

#[test]
fn extra_body_merges_into_options() {
    let mut req = GenerationRequest::new("m", Prompt::Text("x".into()), 4);
    req.extra_body = Some(r#"{"raw": true, "options": {"top_k": 5}}"#.into());
    let b = body(&req);
    assert_eq!(b["raw"], json!(true));
    assert_eq!(b["options"], json!({"num_predict": 4, "top_k": 5}));
}

#[test]
fn info_names_the_protocol() {
    let info = Ollama::info();
    assert_eq!(info.name, "ollama");
    assert_eq!(info.framing, Framing::Ndjson);
    assert_eq!(info.default_path, "/api/generate");
}
