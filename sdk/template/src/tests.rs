//! Native tests (`cargo test`): recorded bodies replayed through the parser
//! exactly as llm-loadtest frames them. Record real bodies from your server
//! (`curl -N ... > body.ndjson`) and `include_bytes!` them here.

use llm_loadtest_sdk::serde_json::{self, Value};
use llm_loadtest_sdk::testing::{replay, replay_split_everywhere};
use llm_loadtest_sdk::{Adapter, Framing, GenerationRequest, Prompt, Usage};

use crate::MyServer;

const STREAM: &[u8] = b"{\"model\":\"m\",\"response\":\"Hel\",\"done\":false}\n\
{\"model\":\"m\",\"response\":\"\",\"done\":false}\n\
{\"model\":\"m\",\"response\":\"lo\",\"done\":false}\n\
{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":4,\"eval_count\":2}\n";

#[test]
fn replays_a_stream() {
    // Also splits the body at every byte, as the network may.
    let r = replay_split_everywhere::<MyServer>(Framing::Ndjson, STREAM).unwrap();
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
    let r = replay::<MyServer>(Framing::Ndjson, b"{\"error\": \"model not found\"}\n").unwrap();
    assert_eq!(r.summary.errors, vec!["model not found"]);
}

#[test]
fn builds_the_request() {
    let mut req = GenerationRequest::new("m", Prompt::Text("Hi".into()), 8);
    req.extra_body = Some(r#"{"keep_alive": "5m"}"#.into());
    let http = MyServer::build_request(&req).unwrap();
    assert_eq!(http.path, "/api/generate");
    assert_eq!(http.framing, Framing::Ndjson);
    let body: Value = serde_json::from_slice(&http.body).unwrap();
    assert_eq!(body["prompt"], "Hi");
    assert_eq!(body["options"]["num_predict"], 8);
    assert_eq!(body["keep_alive"], "5m");
}
