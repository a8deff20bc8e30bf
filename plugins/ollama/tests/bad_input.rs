//! Input the Ollama parser must refuse with a clear message, never a panic.

use llm_loadtest_plugin_ollama::parse::OllamaParser;
use llm_loadtest_sdk::{Event, StreamParser};

fn feed(message: &[u8]) -> Result<Vec<Event>, String> {
    OllamaParser.feed(message)
}

#[test]
fn malformed_json_is_an_error_naming_the_line() {
    let e = feed(b"{\"model\":\"m\",\"response\":").unwrap_err();
    assert!(e.starts_with("not an Ollama response line: "), "{e}");
    assert!(e.ends_with("(line: {\"model\":\"m\",\"response\":)"), "{e}");
}

#[test]
fn unexpected_shapes_are_errors() {
    for (message, want) in [
        (
            &b"{\"model\":\"m\"}"[..],
            "has none of `response`, `message`",
        ),
        (b"[\"hi\"]", "must be a JSON object (line: [\"hi\"])"),
        (b"{\"response\":[1]}", "not an Ollama response line"),
        (b"{\"done\":\"yes\"}", "not an Ollama response line"),
        (
            b"{\"done\":true,\"eval_count\":1.5}",
            "not an Ollama response line",
        ),
        (b"{\"message\":\"hi\"}", "not an Ollama response line"),
    ] {
        let e = feed(message).unwrap_err();
        assert!(e.contains(want), "{e} (wanted {want})");
    }
}

#[test]
fn done_without_counts_or_reason_is_still_done() {
    assert_eq!(
        feed(br#"{"response":"","done":true}"#).unwrap(),
        [Event::Done]
    );
    assert_eq!(
        feed(br#"{"error":{"why":"x"}}"#).unwrap(),
        [Event::Error(r#"{"why":"x"}"#.into())]
    );
}
