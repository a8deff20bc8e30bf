//! Native tests (`cargo test`): recorded bodies replayed through the parser
//! exactly as llm-loadtest frames them. Record real bodies from your server
//! (`curl -N ... > body.sse`) and `include_bytes!` them here.

use llm_loadtest_sdk::serde_json::{self, Value};
use llm_loadtest_sdk::testing::{replay, replay_split_everywhere};
use llm_loadtest_sdk::{Adapter, Framing, GenerationRequest, Prompt, Usage};

use crate::MyServer;

const STREAM: &[u8] = b": keep-alive\n\n\
data: {\"text\": \"Hel\"}\n\n\
data: {\"text\": \"\"}\n\n\
data: {\"text\": \"lo\"}\n\n\
data: {\"finish_reason\": \"length\", \"prompt_tokens\": 4, \"completion_tokens\": 2}\n\n\
data: [DONE]\n\n";

#[test]
fn replays_a_stream() {
    // Also splits the body at every byte, as the network may.
    let r = replay_split_everywhere::<MyServer>(Framing::Sse, STREAM).unwrap();
    assert_eq!(r.summary.content, "Hello");
    assert_eq!(r.summary.content_events, 2);
    assert_eq!(r.summary.finish_reason.as_deref(), Some("length"));
    assert_eq!(
        r.summary.usage,
        Some(Usage {
            prompt_tokens: Some(4),
            completion_tokens: Some(2),
            cached_tokens: None,
        })
    );
    assert!(r.summary.done);
    assert!(r.summary.errors.is_empty());
}

#[test]
fn server_errors_become_error_events() {
    let r = replay::<MyServer>(Framing::Sse, b"data: {\"error\": \"overloaded\"}\n\n").unwrap();
    assert_eq!(r.summary.errors, vec!["overloaded"]);
}

#[test]
fn builds_the_request() {
    let mut req = GenerationRequest::new("m", Prompt::Text("Hi".into()), 8);
    req.extra_body = Some(r#"{"top_k": 4}"#.into());
    let http = MyServer::build_request(&req).unwrap();
    assert_eq!(http.path, "/generate");
    let body: Value = serde_json::from_slice(&http.body).unwrap();
    assert_eq!(body["prompt"], "Hi");
    assert_eq!(body["max_tokens"], 8);
    assert_eq!(body["top_k"], 4);
}
