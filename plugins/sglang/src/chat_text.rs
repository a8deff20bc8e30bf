//! A chat conversation flattened into one text prompt, for servers whose
//! native endpoint takes text only (SGLang's `/generate`, Triton, TGI).
//!
//! The template is deliberately plain and model-independent: one line
//! `role: content` per message, then a line `assistant:` to answer on. It is
//! not the model's own chat template, so the server sees other prompt tokens
//! than its OpenAI chat endpoint would build from the same messages; to
//! benchmark a server's chat path, use its OpenAI-compatible adapter.
//!
//! The triton and tgi adapters compile this file by path (as the vllm adapter
//! does with openai's protocol code): linking this crate would bring its
//! component exports along.

use llm_loadtest_sdk::Message;

/// `messages` as one prompt, or an error when there are none.
pub fn flatten(messages: &[Message]) -> Result<String, String> {
    if messages.is_empty() {
        return Err("a chat prompt needs at least one message".into());
    }
    let len = messages
        .iter()
        .map(|m| m.role.len() + m.content.len() + 3)
        .sum::<usize>();
    let mut text = String::with_capacity(len + 10);
    for m in messages {
        text.push_str(&m.role);
        text.push_str(": ");
        text.push_str(&m.content);
        text.push('\n');
    }
    text.push_str("assistant:");
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_message_then_the_answer_line() {
        let text = flatten(&[
            Message::new("system", "Be brief."),
            Message::new("user", "Hi\nthere"),
        ])
        .unwrap();
        assert_eq!(text, "system: Be brief.\nuser: Hi\nthere\nassistant:");
        assert!(flatten(&[]).is_err());
    }
}
