//! Input the SGLang parser must refuse with a clear message, never a panic.

use llm_loadtest_plugin_sglang::parse::SglangParser;
use llm_loadtest_sdk::StreamParser;

fn feed(message: &[u8]) -> Result<Vec<llm_loadtest_sdk::Event>, String> {
    SglangParser::default().feed(message)
}

#[test]
fn malformed_json_is_an_error_naming_the_message() {
    let e = feed(b"{\"text\":\" a\",\"meta_info\":").unwrap_err();
    assert!(e.starts_with("not an SGLang /generate message: "), "{e}");
    assert!(
        e.contains("(message: {\"text\":\" a\",\"meta_info\":)"),
        "{e}"
    );
}

#[test]
fn unexpected_shapes_are_errors() {
    for (message, want) in [
        (&b"{}"[..], "has none of `text`, `meta_info` or `error`"),
        (b"[{\"text\":\"a\"}]", "must be a JSON object (message: [{"),
        (b" \"text\"", "must be a JSON object"),
        (b"{\"text\":5}", "not an SGLang /generate message"),
        (
            b"{\"text\":\"a\",\"meta_info\":{\"completion_tokens\":-1}}",
            "not an SGLang /generate message",
        ),
        (
            b"{\"text\":\"a\",\"meta_info\":{\"finish_reason\":{\"length\":3}}}",
            "finish_reason object has no string `type`",
        ),
        (
            b"{\"text\":\"a\",\"meta_info\":{\"finish_reason\":7}}",
            "finish_reason must be an object or a string, found 7",
        ),
    ] {
        let e = feed(message).unwrap_err();
        assert!(e.contains(want), "{e} (wanted {want})");
    }
}

#[test]
fn invalid_utf8_is_an_error() {
    let e = feed(b"{\"text\":\"\xff\"}").unwrap_err();
    assert!(e.starts_with("not an SGLang /generate message"), "{e}");
}

#[test]
fn error_bodies_of_other_shapes_are_kept_verbatim() {
    use llm_loadtest_sdk::Event;
    assert_eq!(
        feed(br#"{"error":"plain"}"#).unwrap(),
        [Event::Error("plain".into())]
    );
    assert_eq!(
        feed(br#"{"error":{"code":3}}"#).unwrap(),
        [Event::Error(r#"{"code":3}"#.into())]
    );
}
