//! ShareGPT JSON: `[{"conversations": [{"from": "human", "value": ...},
//! {"from": "gpt", "value": ...}, ...]}, ...]`.
//!
//! The array is deserialised one entry at a time from a buffered reader, so a
//! file of hundreds of megabytes never sits in memory as a whole; only the
//! sampled prompts are kept, and only entries that could enter the sample are
//! tokenised.

use std::convert::Infallible;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer as _, SeqAccess, Visitor};

use super::sampling::BottomK;
use super::{ChatMessage, DatasetError, Endpoint, PromptItem, PromptText, tokens_u32};
use crate::tokenize::Tokenizer;

// vLLM's ShareGPT filter (benchmarks `is_valid_sequence`), so samples match.
const MIN_LEN: usize = 4;
const MAX_PROMPT_LEN: usize = 1024;
const MAX_TOTAL_LEN: usize = 2048;

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    conversations: Option<Vec<Turn>>,
}

#[derive(Deserialize)]
struct Turn {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

fn is_human(role: &str) -> bool {
    matches!(role, "human" | "user")
}

/// The first human turn and the first model turn after it. Model turns are
/// `gpt` in ShareGPT; variants use `assistant`, `chatgpt`, `bard`, so any
/// role other than human/user/system counts.
fn prompt_and_answer(turns: &[Turn]) -> Option<(&str, &str)> {
    fn role(turn: &Turn) -> &str {
        turn.from.as_deref().unwrap_or("")
    }
    let human = turns.iter().position(|t| is_human(role(t)))?;
    let answer = turns[human + 1..]
        .iter()
        .find(|t| !is_human(role(t)) && role(t) != "system")?;
    Some((turns[human].value.as_deref()?, answer.value.as_deref()?))
}

#[derive(Default)]
struct Tally {
    entries: u64,
    too_few_turns: u64,
    no_pair: u64,
    out_of_bounds: u64,
}

pub(super) fn load(
    path: &Path,
    output_len: Option<u32>,
    tokenizer: &Tokenizer,
    endpoint: Endpoint,
    count: usize,
    seed: u64,
) -> Result<Vec<PromptItem>, DatasetError> {
    if output_len == Some(0) {
        return Err(DatasetError::InvalidSpec(
            "output_len must be at least 1".to_owned(),
        ));
    }
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut sample = BottomK::new(count, seed);
    let mut tally = Tally::default();
    let mut on_entry = |position: u64, entry: Entry| {
        tally.entries += 1;
        let turns = entry.conversations.unwrap_or_default();
        let Ok(()) = sample.offer(position, || {
            Ok::<_, Infallible>(choose(&turns, output_len, tokenizer, endpoint, &mut tally))
        });
    };
    let json_error = |source| DatasetError::ShareGptJson {
        path: path.to_owned(),
        source,
    };
    let mut reader = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 20, file));
    reader
        .deserialize_seq(EntryStream {
            on_entry: &mut on_entry,
        })
        .map_err(json_error)?;
    reader.end().map_err(json_error)?;

    let items = sample.into_cycled();
    // With nothing usable the sample never filled, so every entry was judged
    // and the tally is complete.
    if count > 0 && items.is_empty() {
        return Err(DatasetError::NoUsableItems {
            path: path.to_owned(),
            reason: format!(
                "{} entries: {} with fewer than 2 turns, {} without a human turn \
                 followed by a model turn, {} outside the length bounds",
                tally.entries, tally.too_few_turns, tally.no_pair, tally.out_of_bounds
            ),
        });
    }
    Ok(items)
}

/// The item for one entry, or `None` (counted in `tally`) when it is skipped.
fn choose(
    turns: &[Turn],
    output_len: Option<u32>,
    tokenizer: &Tokenizer,
    endpoint: Endpoint,
    tally: &mut Tally,
) -> Option<PromptItem> {
    if turns.len() < 2 {
        tally.too_few_turns += 1;
        return None;
    }
    let Some((prompt, answer)) = prompt_and_answer(turns) else {
        tally.no_pair += 1;
        return None;
    };
    let prompt_len = tokenizer.count(prompt);
    let (output, check_min_output) = match output_len {
        Some(len) => (len as usize, false),
        None => (tokenizer.count(answer), true),
    };
    if prompt_len < MIN_LEN
        || (check_min_output && output < MIN_LEN)
        || prompt_len > MAX_PROMPT_LEN
        || prompt_len + output > MAX_TOTAL_LEN
    {
        tally.out_of_bounds += 1;
        return None;
    }
    Some(PromptItem {
        prompt: match endpoint {
            Endpoint::Completions => PromptText::Text(prompt.to_owned()),
            Endpoint::Chat => PromptText::Chat(vec![ChatMessage::user(prompt)]),
        },
        input_tokens: tokens_u32(prompt_len),
        max_tokens: tokens_u32(output),
    })
}

/// Feeds array elements to a callback as they are parsed.
struct EntryStream<'a, F> {
    on_entry: &'a mut F,
}

impl<'de, F: FnMut(u64, Entry)> Visitor<'de> for EntryStream<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of {\"conversations\": [...]} objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut position = 0;
        while let Some(entry) = seq.next_element::<Entry>()? {
            (self.on_entry)(position, entry);
            position += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::TokenizerKind;
    use std::collections::HashSet;
    use std::io::Write;
    use std::path::PathBuf;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dataset/testdata/sharegpt.json")
    }

    fn tok() -> Tokenizer {
        Tokenizer::new(TokenizerKind::Cl100kBase).expect("loads")
    }

    fn text(item: &PromptItem) -> &str {
        match &item.prompt {
            PromptText::Text(text) => text,
            PromptText::Chat(messages) => &messages[0].content,
        }
    }

    fn write_temp(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(contents.as_bytes()).expect("write");
        file
    }

    /// The fixture's usable entries; the rest exercise each skip rule.
    const USABLE: [&str; 6] = [
        "Explain how a hash map handles collisions, with an example.",
        "Write a haiku about the sea at night.",
        "What is the capital of France, and why is it famous?",
        "Translate 'good morning, how are you today' into Spanish.",
        "List three prime numbers greater than one hundred.",
        "Summarise the plot of Hamlet in two sentences please.",
    ];

    #[test]
    fn keeps_valid_first_turns_with_answer_lengths() {
        let tok = tok();
        let items = load(&fixture(), None, &tok, Endpoint::Completions, 6, 1).expect("loads");
        let prompts: HashSet<&str> = items.iter().map(text).collect();
        assert_eq!(prompts, USABLE.into_iter().collect());
        for item in &items {
            assert_eq!(tok.count(text(item)) as u32, item.input_tokens);
            assert!(item.max_tokens >= 4);
        }
        // The collision answer's length, measured independently.
        let answer = "A hash map stores entries in buckets chosen by the hash. When two keys \
                      land in the same bucket, it keeps a short list there (chaining) or probes \
                      for the next free slot (open addressing).";
        let collision = items
            .iter()
            .find(|i| text(i).contains("collisions"))
            .expect("present");
        assert_eq!(collision.max_tokens as usize, tok.count(answer));
    }

    #[test]
    fn output_len_overrides_answer_length() {
        let items =
            load(&fixture(), Some(300), &tok(), Endpoint::Completions, 7, 1).expect("loads");
        assert!(items.iter().all(|i| i.max_tokens == 300));
        // With an override, a short answer no longer disqualifies an entry.
        assert!(
            items
                .iter()
                .any(|i| text(i) == "Say hi to me in French, please.")
        );
        let err = load(&fixture(), Some(0), &tok(), Endpoint::Completions, 6, 1).expect_err("0");
        assert!(matches!(err, DatasetError::InvalidSpec(_)), "{err}");
    }

    #[test]
    fn seeded_sampling_and_cycling() {
        let tok = tok();
        let a = load(&fixture(), None, &tok, Endpoint::Completions, 3, 10).expect("loads");
        assert_eq!(
            a,
            load(&fixture(), None, &tok, Endpoint::Completions, 3, 10).expect("loads")
        );
        let orders: HashSet<Vec<String>> = (0..8)
            .map(|seed| {
                load(&fixture(), None, &tok, Endpoint::Completions, 6, seed)
                    .expect("loads")
                    .iter()
                    .map(|i| text(i).to_owned())
                    .collect()
            })
            .collect();
        assert!(orders.len() > 1, "seed does not change the order");
        let many = load(&fixture(), None, &tok, Endpoint::Completions, 14, 10).expect("loads");
        assert_eq!(many.len(), 14);
        assert_eq!(many[..6], many[6..12]);
        assert_eq!(many[12..], many[..2]);
    }

    #[test]
    fn chat_endpoint_gives_one_user_message() {
        let items = load(&fixture(), None, &tok(), Endpoint::Chat, 6, 1).expect("loads");
        for item in &items {
            let PromptText::Chat(messages) = &item.prompt else {
                panic!("expected chat, got {:?}", item.prompt);
            };
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].role, "user");
        }
    }

    #[test]
    fn length_bounds_follow_vllm() {
        let tok = tok();
        let long_prompt = "word ".repeat(1100);
        let long_answer = "word ".repeat(1500);
        let mid_prompt = "word ".repeat(700).trim_end().to_owned();
        let ok_prompt = "Tell me something interesting about owls.";
        let entries = serde_json::json!([
            {"conversations": [{"from": "human", "value": long_prompt}, {"from": "gpt", "value": "Fine, fine, fine then."}]},
            {"conversations": [{"from": "human", "value": mid_prompt}, {"from": "gpt", "value": long_answer}]},
            {"conversations": [{"from": "human", "value": ok_prompt}, {"from": "gpt", "value": "Owls can turn their heads very far."}]},
        ]);
        let file = write_temp(&entries.to_string());
        let items = load(file.path(), None, &tok, Endpoint::Completions, 5, 0).expect("loads");
        assert!(items.iter().all(|i| text(i) == ok_prompt), "{items:?}");
        // 700 + 1500 > 2048, but 700 + 100 fits.
        let items = load(file.path(), Some(100), &tok, Endpoint::Completions, 2, 0).expect("loads");
        let lens: HashSet<u32> = items.iter().map(|i| i.input_tokens).collect();
        assert!(lens.contains(&700), "{lens:?}");
    }

    #[test]
    fn errors_name_the_file() {
        let tok = tok();
        let missing = Path::new("/nonexistent/sharegpt.json");
        let err = load(missing, None, &tok, Endpoint::Completions, 1, 0).expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/sharegpt.json"),
            "{err}"
        );

        for (bad, needle) in [
            ("{\"conversations\": []}", "array"),
            (
                "[{\"conversations\": [{\"from\": \"human\", \"value\": 5}]}]",
                "line 1",
            ),
            ("[{\"conversations\": []},", "EOF"),
            ("[] trailing", "trailing"),
        ] {
            let file = write_temp(bad);
            let err =
                load(file.path(), None, &tok, Endpoint::Completions, 1, 0).expect_err("malformed");
            let message = err.to_string();
            assert!(
                message.contains(&file.path().display().to_string()),
                "{message}"
            );
            assert!(message.contains(needle), "{bad}: {message}");
        }

        let file = write_temp("[{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}]}]");
        let err = load(file.path(), None, &tok, Endpoint::Completions, 1, 0).expect_err("none");
        assert!(
            err.to_string().contains("1 with fewer than 2 turns"),
            "{err}"
        );
    }
}
