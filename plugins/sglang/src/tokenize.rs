//! Counting through `POST /tokenize` for adapters whose generation endpoint takes one text
//! (SGLang's native `/generate`, TGI's `/generate_stream`). A chat is flattened exactly as the
//! generation request flattens it ([`crate::chat_text`]), so the server counts the text it
//! would be sent. SGLang reads `{"prompt"}` and answers `{"tokens", "count"}`; TGI reads
//! `{"inputs"}` and answers an array of tokens. Shared with the tgi adapter by path.

use llm_loadtest_sdk::json::tokenize_count;
use llm_loadtest_sdk::{Framing, HttpRequest, Prompt, TokenizeQuery, TokenizeStep};
use serde_json::json;

/// The tokenize endpoint of both servers.
pub const TOKENIZE_PATH: &str = "/tokenize";

/// The request for `query`, the text under `field` (`prompt` for SGLang, `inputs` for TGI).
pub fn build(query: &TokenizeQuery, field: &str) -> Result<HttpRequest, String> {
    let text = match &query.prompt {
        Prompt::Text(text) => text.clone(),
        Prompt::Chat(messages) => crate::chat_text::flatten(messages)?,
    };
    Ok(HttpRequest::post_json(
        TOKENIZE_PATH,
        json!({ field: text }).to_string().into_bytes(),
        Framing::WholeBody,
    ))
}

/// The count in the one answer.
pub fn parse(step: u32, status: u16, body: &[u8]) -> Result<TokenizeStep, String> {
    if step != 0 {
        return Err(format!("no step {step} in this exchange"));
    }
    tokenize_count(TOKENIZE_PATH, status, body).map(TokenizeStep::Count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_loadtest_sdk::Message;

    #[test]
    fn a_chat_is_counted_as_the_text_sent() {
        let chat = vec![Message::new("user", "Hi there")];
        let q = TokenizeQuery {
            model: "m".into(),
            prompt: Prompt::Chat(chat.clone()),
        };
        let r = build(&q, "inputs").expect("builds");
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        let flat = crate::chat_text::flatten(&chat).expect("flattens");
        assert_eq!(body, json!({"inputs": flat}));
        assert_eq!(r.path, "/tokenize");
        assert_eq!(
            parse(0, 200, br#"{"tokens":[1,2,3],"count":3}"#),
            Ok(TokenizeStep::Count(3))
        );
        assert!(parse(1, 200, b"[]").is_err());
        assert!(parse(0, 500, b"boom").unwrap_err().contains("HTTP 500"));
    }
}
