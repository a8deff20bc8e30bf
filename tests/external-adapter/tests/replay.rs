//! Native tests: recorded bodies replayed exactly as the host replays them.

use llm_loadtest_sdk::testing::{Summary, replay, replay_split_everywhere};
use llm_loadtest_sdk::{Adapter, Event, Framing, GenerationRequest, Message, Prompt, Usage};
use tinyjsonl_adapter::TinyJsonl;

const COMPLETE: &[u8] = b"{\"think\": \"hmm\"}\n{\"t\": \"Hel\"}\n{\"t\": \"\"}\n\n{\"t\": \"lo \\u00e9\"}\r\n{\"end\": \"length\", \"in\": 3, \"out\": 2}\n";

#[test]
fn a_complete_body() {
    let r = replay_split_everywhere::<TinyJsonl>(Framing::Ndjson, COMPLETE).unwrap();
    assert_eq!(
        r.summary,
        Summary {
            content: "Hello \u{e9}".into(),
            reasoning: "hmm".into(),
            content_events: 2,
            reasoning_events: 1,
            usage: Some(Usage {
                prompt_tokens: Some(3),
                completion_tokens: Some(2),
                cached_tokens: None
            }),
            usage_events: 1,
            finish_reason: Some("length".into()),
            errors: vec![],
            done: true,
        }
    );
}

#[test]
fn a_truncated_body_is_an_error() {
    let r = replay::<TinyJsonl>(Framing::Ndjson, b"{\"t\": \"a\"}\n{\"t\": \"b").unwrap_err();
    assert!(r.to_string().contains("message #1"), "{r}");
    let r = replay::<TinyJsonl>(Framing::Ndjson, b"{\"t\": \"a\"}\n").unwrap();
    assert_eq!(
        r.summary.errors,
        vec!["tinyjsonl: the body ended without an \"end\" line"]
    );
}

#[test]
fn a_fault_line_is_an_error_event() {
    let r =
        replay::<TinyJsonl>(Framing::Ndjson, b"{\"t\": \"a\"}\n{\"fault\": \"oom\"}\n").unwrap();
    assert_eq!(r.events[1], Event::Error("oom".into()));
}

#[test]
fn requests() {
    let mut req = GenerationRequest::new("any", Prompt::Text("Hi".into()), 5);
    req.extra_body = Some(r#"{"seed": 1}"#.into());
    let http = TinyJsonl::build_request(&req).unwrap();
    assert_eq!(http.path, "/api/complete");
    assert_eq!(http.framing, Framing::Ndjson);
    assert_eq!(
        String::from_utf8(http.body).unwrap(),
        r#"{"input":"Hi","limit":5,"seed":1}"#
    );
    let chat = GenerationRequest::new(
        "any",
        Prompt::Chat(vec![
            Message::new("user", "a"),
            Message::new("assistant", "b"),
        ]),
        5,
    );
    let body = String::from_utf8(TinyJsonl::build_request(&chat).unwrap().body).unwrap();
    assert_eq!(body, r#"{"input":"user: a\nassistant: b","limit":5}"#);
    req.extra_body = Some("3".into());
    assert!(
        TinyJsonl::build_request(&req)
            .unwrap_err()
            .contains("found number")
    );
}
