//! JSONL prompts: one JSON object per line, `{"prompt": "..."}` or
//! `{"messages": [{"role": ..., "content": ...}, ...]}`, optional
//! `"max_tokens"`; other fields are ignored. Read line by line; every line is
//! validated, and only the sampled ones are kept and tokenised.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;

use super::sampling::BottomK;
use super::{ChatMessage, DatasetError, Endpoint, PromptItem, PromptText, tokens_u32};
use crate::tokenize::Tokenizer;

#[derive(Deserialize)]
#[serde(expecting = "a JSON object with `prompt` or `messages`")]
struct Record {
    prompt: Option<String>,
    messages: Option<Vec<ChatMessage>>,
    max_tokens: Option<u32>,
}

/// A validated line, before tokenising.
#[derive(Clone)]
struct Chosen {
    prompt: PromptText,
    max_tokens: Option<u32>,
}

pub(super) fn load(
    path: &Path,
    output_len: u32,
    tokenizer: &Tokenizer,
    endpoint: Endpoint,
    count: usize,
    seed: u64,
) -> Result<Vec<PromptItem>, DatasetError> {
    if output_len == 0 {
        return Err(DatasetError::InvalidSpec(
            "output_len must be at least 1".to_owned(),
        ));
    }
    let io_error = |source| DatasetError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_error)?);
    let mut sample = BottomK::new(count, seed);
    let mut line = String::new();
    let mut line_no = 0u64;
    let mut records = 0u64;
    loop {
        line.clear();
        line_no += 1;
        let read = reader.read_line(&mut line).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                line_error(path, line_no, "not valid UTF-8".to_owned())
            } else {
                io_error(e)
            }
        })?;
        if read == 0 {
            break;
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let chosen =
            parse_line(text, endpoint).map_err(|reason| line_error(path, line_no, reason))?;
        sample.offer(records, || Ok::<_, DatasetError>(Some(chosen)))?;
        records += 1;
    }
    if records == 0 {
        return Err(DatasetError::NoUsableItems {
            path: path.to_owned(),
            reason: "the file has no JSON lines".to_owned(),
        });
    }
    Ok(sample
        .into_cycled()
        .into_iter()
        .map(|chosen| finish(chosen, output_len, tokenizer))
        .collect())
}

fn line_error(path: &Path, line: u64, reason: String) -> DatasetError {
    DatasetError::JsonlLine {
        path: path.to_owned(),
        line,
        reason,
    }
}

fn parse_line(text: &str, endpoint: Endpoint) -> Result<Chosen, String> {
    // serde would also accept `["prompt", ...]` for a struct; insist on an object.
    if !text.starts_with('{') {
        return Err("not a JSON object (expected `prompt` or `messages`)".to_owned());
    }
    let record: Record = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if record.max_tokens == Some(0) {
        return Err("`max_tokens` must be at least 1".to_owned());
    }
    let prompt = match (record.prompt, record.messages) {
        (Some(_), Some(_)) => return Err("has both `prompt` and `messages`".to_owned()),
        (None, None) => return Err("needs `prompt` or `messages`".to_owned()),
        (Some(prompt), None) => {
            if prompt.is_empty() {
                return Err("`prompt` is empty".to_owned());
            }
            match endpoint {
                Endpoint::Completions => PromptText::Text(prompt),
                Endpoint::Chat => PromptText::Chat(vec![ChatMessage::user(prompt)]),
            }
        }
        (None, Some(messages)) => {
            if messages.is_empty() {
                return Err("`messages` is empty".to_owned());
            }
            match endpoint {
                Endpoint::Chat => PromptText::Chat(messages),
                Endpoint::Completions => {
                    return Err("has `messages`, but the completions endpoint takes a \
                                plain `prompt` (use the chat endpoint)"
                        .to_owned());
                }
            }
        }
    };
    Ok(Chosen {
        prompt,
        max_tokens: record.max_tokens,
    })
}

fn finish(chosen: Chosen, output_len: u32, tokenizer: &Tokenizer) -> PromptItem {
    let input_tokens = match &chosen.prompt {
        PromptText::Text(text) => tokenizer.count(text),
        PromptText::Chat(messages) => messages.iter().map(|m| tokenizer.count(&m.content)).sum(),
    };
    PromptItem {
        prompt: chosen.prompt,
        input_tokens: tokens_u32(input_tokens),
        max_tokens: chosen.max_tokens.unwrap_or(output_len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::TokenizerKind;
    use std::collections::HashSet;
    use std::io::Write;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/dataset/testdata")
            .join(name)
    }

    fn tok() -> Tokenizer {
        Tokenizer::new(TokenizerKind::O200kBase).expect("loads")
    }

    fn write_temp(contents: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(contents).expect("write");
        file
    }

    #[test]
    fn chat_endpoint_reads_both_shapes() {
        let tok = tok();
        let items = load(&fixture("prompts.jsonl"), 64, &tok, Endpoint::Chat, 5, 2).expect("loads");
        assert_eq!(items.len(), 5);
        let mut seen = HashSet::new();
        for item in &items {
            let PromptText::Chat(messages) = &item.prompt else {
                panic!("expected chat, got {:?}", item.prompt);
            };
            let contents: usize = messages.iter().map(|m| tok.count(&m.content)).sum();
            assert_eq!(item.input_tokens as usize, contents);
            seen.insert(messages[0].content.clone());
            match messages[0].content.as_str() {
                "Name a colour of the rainbow." => assert_eq!(item.max_tokens, 64),
                "Count from one to five." => assert_eq!(item.max_tokens, 12),
                "You are terse." => {
                    assert_eq!(messages.len(), 4);
                    assert_eq!(messages[3].role, "user");
                    assert_eq!(item.max_tokens, 40);
                }
                other => {
                    assert_eq!(messages.len(), 1);
                    assert_eq!(messages[0].role, "user", "{other}");
                }
            }
        }
        assert_eq!(seen.len(), 5, "all five records, each once");
    }

    #[test]
    fn completions_endpoint_reads_prompts_and_rejects_messages() {
        let tok = tok();
        let items = load(
            &fixture("prompts-text.jsonl"),
            32,
            &tok,
            Endpoint::Completions,
            3,
            0,
        )
        .expect("loads");
        for item in &items {
            let PromptText::Text(text) = &item.prompt else {
                panic!("expected text, got {:?}", item.prompt);
            };
            assert_eq!(item.input_tokens as usize, tok.count(text));
        }
        let err = load(
            &fixture("prompts.jsonl"),
            32,
            &tok,
            Endpoint::Completions,
            3,
            0,
        )
        .expect_err("messages on completions");
        let message = err.to_string();
        assert!(message.contains("prompts.jsonl:4:"), "{message}");
        assert!(message.contains("chat endpoint"), "{message}");
    }

    #[test]
    fn seeded_sampling_and_cycling() {
        let tok = tok();
        let path = fixture("prompts-text.jsonl");
        let a = load(&path, 8, &tok, Endpoint::Completions, 20, 5).expect("loads");
        assert_eq!(
            a,
            load(&path, 8, &tok, Endpoint::Completions, 20, 5).expect("loads")
        );
        assert_eq!(a.len(), 20);
        assert_eq!(a[..10], a[10..], "ten records, then the same ten again");
        let distinct: HashSet<&PromptText> = a.iter().map(|i| &i.prompt).collect();
        assert_eq!(distinct.len(), 10);
        let b = load(&path, 8, &tok, Endpoint::Completions, 10, 6).expect("loads");
        assert_ne!(a[..10], b[..], "another seed, another order");
        let few = load(&path, 8, &tok, Endpoint::Completions, 3, 5).expect("loads");
        assert_eq!(
            few[..],
            a[..3],
            "a smaller count takes the front of the same order"
        );
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let tok = tok();
        let cases: [(&[u8], u64, &str); 9] = [
            (
                b"{\"prompt\": \"ok\"}\n{\"prompt\": \"unterminated}\n",
                2,
                "EOF",
            ),
            (
                b"{\"prompt\": \"ok\"}\n\n   \n[1, 2]\n",
                4,
                "not a JSON object",
            ),
            (b"{\"other\": 1}\n", 1, "needs `prompt` or `messages`"),
            (b"{\"prompt\": \"a\", \"messages\": []}\n", 1, "both"),
            (b"{\"prompt\": \"\"}\n", 1, "empty"),
            (b"{\"messages\": []}\n", 1, "empty"),
            (b"{\"prompt\": \"a\", \"max_tokens\": 0}\n", 1, "at least 1"),
            (b"{\"prompt\": \"a\", \"max_tokens\": -3}\n", 1, "u32"),
            (
                b"{\"prompt\": \"a\"}\n{\"prompt\": \"\xff\xfe\"}\n",
                2,
                "UTF-8",
            ),
        ];
        for (contents, line, needle) in cases {
            let file = write_temp(contents);
            let err = load(file.path(), 8, &tok, Endpoint::Chat, 1, 0).expect_err("bad line");
            let expected = format!("{}:{line}: ", file.path().display());
            let message = err.to_string();
            assert!(message.starts_with(&expected), "{message}");
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn empty_or_missing_files_are_errors() {
        let tok = tok();
        let file = write_temp(b"\n  \n\r\n");
        let err = load(file.path(), 8, &tok, Endpoint::Chat, 1, 0).expect_err("empty");
        assert!(matches!(err, DatasetError::NoUsableItems { .. }), "{err}");
        let err = load(
            Path::new("/nonexistent/p.jsonl"),
            8,
            &tok,
            Endpoint::Chat,
            1,
            0,
        )
        .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/p.jsonl"), "{err}");
        let err = load(file.path(), 0, &tok, Endpoint::Chat, 1, 0).expect_err("zero");
        assert!(matches!(err, DatasetError::InvalidSpec(_)), "{err}");
    }

    #[test]
    fn crlf_and_unknown_fields_are_fine() {
        let tok = tok();
        let file = write_temp(b"{\"id\": 7, \"prompt\": \"Hello there\", \"max_tokens\": 9}\r\n");
        let items = load(file.path(), 8, &tok, Endpoint::Completions, 1, 0).expect("loads");
        assert_eq!(items[0].prompt, PromptText::Text("Hello there".to_owned()));
        assert_eq!(items[0].max_tokens, 9);
        assert_eq!(items[0].input_tokens as usize, tok.count("Hello there"));
    }
}
