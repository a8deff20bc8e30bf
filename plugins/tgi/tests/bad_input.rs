//! Input the TGI parser must refuse with a clear message, never a panic.

use llm_loadtest_plugin_tgi::parse::TgiParser;
use llm_loadtest_sdk::{Event, StreamParser};

fn feed(message: &[u8]) -> Result<Vec<Event>, String> {
    TgiParser.feed(message)
}

#[test]
fn malformed_json_is_an_error_naming_the_message() {
    let e = feed(b"{\"index\":").unwrap_err();
    assert!(e.starts_with("not a TGI response: "), "{e}");
    assert!(e.ends_with("(message: {\"index\":)"), "{e}");
}

#[test]
fn unexpected_shapes_are_errors() {
    for (message, want) in [
        (&b"{\"index\":1}"[..], "has none of `token`, `generated_text` or `error`"),
        (b"[]", "must hold one answer, found 0"),
        (b"[{\"generated_text\":\"a\"},{\"generated_text\":\"b\"}]", "found 2"),
        (b"[1]", "not a TGI response"),
        (b"{\"token\":{\"id\":1}}", "not a TGI response"),
        (b"{\"token\":{\"text\":\"a\",\"special\":\"no\"}}", "not a TGI response"),
        (
            b"{\"token\":{\"text\":\"a\"},\"generated_text\":\"a\",\"details\":{\"generated_tokens\":-2}}",
            "not a TGI response",
        ),
        (b"7", "not a TGI response"),
    ] {
        let e = feed(message).unwrap_err();
        assert!(e.contains(want), "{e} (wanted {want})");
    }
}

#[test]
fn error_without_type_and_of_other_shapes() {
    assert_eq!(
        feed(br#"{"error":"Input validation error: `inputs` must not be empty"}"#).unwrap(),
        [Event::Error(
            "Input validation error: `inputs` must not be empty".into()
        )]
    );
    assert_eq!(
        feed(br#"{"error":["x"],"error_type":"overloaded"}"#).unwrap(),
        [Event::Error(r#"["x"] (error_type overloaded)"#.into())]
    );
}
