//! Asking an OpenAI-compatible server how many tokens it counts in a prompt.
//!
//! vLLM answers `POST /tokenize` with `{"count", "tokens", ...}`: `{"model", "prompt"}` is
//! counted with special tokens (BOS) as `/v1/completions` adds them, `{"model", "messages",
//! "add_generation_prompt": true}` with the chat template as `/v1/chat/completions` renders it
//! (`../shared/wire/vllm-tiny-tokenize*.json`). llama.cpp's `/tokenize` reads `content`, not
//! `prompt`, and answers an empty `{"tokens": []}` to a body without it; a non-empty prompt never
//! has zero tokens, so that answer means "ask again in llama.cpp's words". No server gets a
//! field it does not know (vLLM logs every unknown field). For a chat, llama.cpp first renders
//! the template (`POST /apply-template` → `{"prompt"}`), then counts it as its chat endpoint
//! does: special tokens added and parsed.

use llm_loadtest_sdk::json::{parse_message, str_at, tokenize_count};
use llm_loadtest_sdk::{Framing, HttpRequest, Prompt, TokenizeQuery, TokenizeStep};
use serde_json::{Value, json};

/// vLLM's, SGLang's and llama.cpp's tokenize endpoint.
pub const TOKENIZE_PATH: &str = "/tokenize";
/// llama.cpp's chat template renderer.
pub const APPLY_TEMPLATE_PATH: &str = "/apply-template";

/// Step numbers of the llama.cpp path.
const STEP_FIRST: u32 = 0;
const STEP_LLAMA_TEXT_OR_TEMPLATE: u32 = 1;
const STEP_LLAMA_CHAT_COUNT: u32 = 2;

fn post(path: &str, body: Value) -> HttpRequest {
    HttpRequest::post_json(path, body.to_string().into_bytes(), Framing::WholeBody)
}

fn messages(query: &TokenizeQuery) -> Option<Value> {
    match &query.prompt {
        Prompt::Text(_) => None,
        Prompt::Chat(ms) => Some(
            ms.iter()
                .map(|m| json!({"role": m.role, "content": m.content}))
                .collect(),
        ),
    }
}

/// The first request: vLLM's shape.
pub fn build(query: &TokenizeQuery) -> Result<HttpRequest, String> {
    let body = match (&query.prompt, messages(query)) {
        (Prompt::Text(text), _) => json!({"model": query.model, "prompt": text}),
        (_, Some(ms)) => {
            json!({"model": query.model, "messages": ms, "add_generation_prompt": true})
        }
        (Prompt::Chat(_), None) => return Err("no messages to count".into()),
    };
    Ok(post(TOKENIZE_PATH, body))
}

/// Read the answer of `step`.
pub fn parse(
    query: &TokenizeQuery,
    step: u32,
    status: u16,
    body: &[u8],
) -> Result<TokenizeStep, String> {
    let n = match step {
        STEP_FIRST => {
            let n = tokenize_count(TOKENIZE_PATH, status, body)?;
            let empty = match &query.prompt {
                Prompt::Text(t) => t.is_empty(),
                Prompt::Chat(ms) => ms.is_empty(),
            };
            if n > 0 || empty {
                return Ok(TokenizeStep::Count(n));
            }
            // llama.cpp: it read neither `prompt` nor `messages`.
            return Ok(TokenizeStep::Then(match (&query.prompt, messages(query)) {
                (Prompt::Text(text), _) => {
                    post(TOKENIZE_PATH, json!({"content": text, "add_special": true}))
                }
                (_, ms) => post(APPLY_TEMPLATE_PATH, json!({"messages": ms})),
            }));
        }
        STEP_LLAMA_TEXT_OR_TEMPLATE => match &query.prompt {
            Prompt::Text(_) => tokenize_count(TOKENIZE_PATH, status, body)?,
            Prompt::Chat(_) => {
                if !(200..300).contains(&status) {
                    return Err(format!(
                        "{APPLY_TEMPLATE_PATH} answered HTTP {status}: {}",
                        llm_loadtest_sdk::json::excerpt(body)
                    ));
                }
                let v = parse_message(body).map_err(|e| format!("{APPLY_TEMPLATE_PATH}: {e}"))?;
                let prompt = str_at(&v, "/prompt")
                    .ok_or_else(|| format!("{APPLY_TEMPLATE_PATH} answered no prompt"))?;
                return Ok(TokenizeStep::Then(post(
                    TOKENIZE_PATH,
                    json!({"content": prompt, "add_special": true, "parse_special": true}),
                )));
            }
        },
        STEP_LLAMA_CHAT_COUNT => tokenize_count(TOKENIZE_PATH, status, body)?,
        _ => return Err(format!("no step {step} in this exchange")),
    };
    Ok(TokenizeStep::Count(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_loadtest_sdk::Message;

    fn query(prompt: Prompt) -> TokenizeQuery {
        TokenizeQuery {
            model: "m".into(),
            prompt,
        }
    }

    fn body_of(r: &HttpRequest) -> Value {
        serde_json::from_slice(&r.body).expect("json body")
    }

    #[test]
    fn vllm_answers_count_at_once() {
        let q = query(Prompt::Text("Hello world".into()));
        let r = build(&q).expect("builds");
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/tokenize"));
        assert_eq!(body_of(&r), json!({"model": "m", "prompt": "Hello world"}));
        let answer = include_bytes!("../../../../tests/fixtures/wire/vllm-tiny-tokenize.json");
        assert_eq!(parse(&q, 0, 200, answer), Ok(TokenizeStep::Count(11)));

        let chat = query(Prompt::Chat(vec![Message::new("user", "Hi")]));
        let r = build(&chat).expect("builds");
        assert_eq!(
            body_of(&r),
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                   "add_generation_prompt": true})
        );
        let answer = include_bytes!("../../../../tests/fixtures/wire/vllm-tiny-tokenize-chat.json");
        assert_eq!(parse(&chat, 0, 200, answer), Ok(TokenizeStep::Count(14)));
    }

    #[test]
    fn llama_cpp_text_is_asked_again_with_content() {
        let q = query(Prompt::Text("Hello world".into()));
        let Ok(TokenizeStep::Then(r)) = parse(&q, 0, 200, br#"{"tokens":[]}"#) else {
            panic!("expected a second request");
        };
        assert_eq!(r.path, "/tokenize");
        assert_eq!(
            body_of(&r),
            json!({"content": "Hello world", "add_special": true})
        );
        assert_eq!(
            parse(&q, 1, 200, br#"{"tokens":[1,15043,3186]}"#),
            Ok(TokenizeStep::Count(3))
        );
    }

    #[test]
    fn llama_cpp_chat_renders_the_template_first() {
        let q = query(Prompt::Chat(vec![Message::new("user", "Hi")]));
        let Ok(TokenizeStep::Then(r)) = parse(&q, 0, 200, br#"{"tokens":[]}"#) else {
            panic!("expected the template request");
        };
        assert_eq!(r.path, "/apply-template");
        assert_eq!(
            body_of(&r),
            json!({"messages": [{"role": "user", "content": "Hi"}]})
        );
        let rendered = br#"{"prompt":"<|user|>\nHi<|end|>\n<|assistant|>\n"}"#;
        let Ok(TokenizeStep::Then(r)) = parse(&q, 1, 200, rendered) else {
            panic!("expected the count request");
        };
        assert_eq!(
            body_of(&r),
            json!({"content": "<|user|>\nHi<|end|>\n<|assistant|>\n",
                   "add_special": true, "parse_special": true})
        );
        assert_eq!(
            parse(&q, 2, 200, br#"{"tokens":[1,2,3,4,5,6]}"#),
            Ok(TokenizeStep::Count(6))
        );
    }

    #[test]
    fn failures_say_what_the_server_answered() {
        let q = query(Prompt::Text("x".into()));
        let err = parse(&q, 0, 404, b"{\"detail\":\"Not Found\"}").unwrap_err();
        assert!(
            err.contains("HTTP 404") && err.contains("Not Found"),
            "{err}"
        );
        let chat = query(Prompt::Chat(vec![Message::new("user", "Hi")]));
        let err = parse(&chat, 1, 200, b"{}").unwrap_err();
        assert!(err.contains("no prompt"), "{err}");
        assert!(parse(&q, 7, 200, b"{}").is_err());
    }
}
