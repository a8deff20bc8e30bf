//! Input the Triton parser must refuse with a clear message, never a panic.

use llm_loadtest_plugin_triton::parse::TritonParser;
use llm_loadtest_sdk::{Event, StreamParser};

fn feed(message: &[u8]) -> Result<Vec<Event>, String> {
    TritonParser::default().feed(message)
}

#[test]
fn malformed_json_is_an_error_naming_the_message() {
    let e = feed(b"{\"model_name\":").unwrap_err();
    assert!(e.starts_with("not a Triton generate response: "), "{e}");
    assert!(e.ends_with("(message: {\"model_name\":)"), "{e}");
}

#[test]
fn unexpected_shapes_are_errors() {
    for (message, want) in [
        (
            &b"{\"model_name\":\"m\",\"model_version\":\"1\"}"[..],
            "neither `text_output` nor `error`",
        ),
        (b"[\"a\"]", "must be a JSON object (message: [\"a\"])"),
        (b"{\"text_output\":5}", "not a Triton generate response"),
        (
            b"{\"text_output\":[\"a\",\"b\"]}",
            "must be a string or a one-string array, found 2 items",
        ),
        (b"{\"text_output\":[1]}", "found 1 items"),
    ] {
        let e = feed(message).unwrap_err();
        assert!(e.contains(want), "{e} (wanted {want})");
    }
}

#[test]
fn error_of_another_shape_is_kept_verbatim_and_blocks_done() {
    let mut p = TritonParser::default();
    assert_eq!(
        p.feed(br#"{"text_output":"a"}"#).unwrap(),
        [Event::token("a")]
    );
    assert_eq!(
        p.feed(br#"{"error":{"msg":"x"}}"#).unwrap(),
        [Event::Error(r#"{"msg":"x"}"#.into())]
    );
    assert_eq!(p.finish().unwrap(), []);
}

#[test]
fn escaped_text_is_decoded() {
    let mut p = TritonParser::default();
    assert_eq!(
        p.feed(br#"{"text_output":"a\"\u00e9\n"}"#).unwrap(),
        [Event::token("a\"\u{e9}\n")]
    );
    assert_eq!(p.finish().unwrap(), [Event::Done]);
}
