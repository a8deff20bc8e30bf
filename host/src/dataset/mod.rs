//! Prompt datasets (DESIGN §6): synthetic token-exact prompts, ShareGPT JSON,
//! and JSONL. [`load`] turns a [`DatasetSpec`] into `count` ready-to-send
//! [`PromptItem`]s, repeatable with the same seed.
//!
//! Token counts are the client tokenizer's. For [`Endpoint::Chat`] they count
//! message contents only: the server's chat template adds tokens (role markers,
//! system preamble) that the client cannot know, so the server's prompt is a
//! little longer than `input_tokens`.

mod error;
mod fitted;
mod jsonl;
mod sampling;
mod sharegpt;
mod synthetic;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use error::DatasetError;

use crate::tokenize::{PromptCounter, Tokenizer};

/// Which API shape prompts are built for.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `/v1/completions`: a plain prompt string.
    Completions,
    /// `/v1/chat/completions`: a list of messages.
    Chat,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: "user".to_owned(),
            content: content.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptText {
    Text(String),
    Chat(Vec<ChatMessage>),
}

impl From<&PromptText> for crate::plugin::Prompt {
    fn from(p: &PromptText) -> Self {
        match p {
            PromptText::Text(t) => crate::plugin::Prompt::Text(t.clone()),
            PromptText::Chat(ms) => crate::plugin::Prompt::Chat(
                ms.iter()
                    .map(|m| crate::plugin::Message {
                        role: m.role.clone(),
                        content: m.content.clone(),
                    })
                    .collect(),
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptItem {
    pub prompt: PromptText,
    /// Client-tokenizer count of the prompt text (of message contents for chat).
    pub input_tokens: u32,
    /// Tokens to ask the server for.
    pub max_tokens: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DatasetSpec {
    /// Text from a bundled public-domain book, cut so that each prompt encodes
    /// to exactly its sampled length. Input and output lengths are uniform in
    /// `[len·(1−r), len·(1+r)]` (at least 1). `prefix_len > 0` puts the same
    /// text of that many tokens before every prompt (prefix-caching tests);
    /// as in vLLM's random dataset, it is added to the sampled input length.
    Synthetic {
        input_len: u32,
        output_len: u32,
        range_ratio: f64,
        prefix_len: u32,
    },
    /// A ShareGPT JSON file: an array of `{"conversations": [{"from", "value"}]}`.
    /// The first human turn is the prompt; `max_tokens` is the token count of
    /// the model turn after it, unless `output_len` overrides it. As in vLLM,
    /// entries with a prompt or answer under 4 tokens, a prompt over 1024, or
    /// both over 2048 are skipped (with `output_len` given, only that value
    /// is checked against the total, not against the minimum).
    ShareGpt {
        path: PathBuf,
        output_len: Option<u32>,
    },
    /// One JSON object per line: `{"prompt": "..."}` or
    /// `{"messages": [{"role", "content"}, ...]}`, with an optional
    /// `"max_tokens"` that wins over `output_len`. Blank lines are skipped.
    /// For the chat endpoint a `prompt` becomes one user message; for the
    /// completions endpoint a `messages` line is an error, because joining
    /// messages without the model's chat template would be a guess.
    Jsonl { path: PathBuf, output_len: u32 },
}

/// Builds `count` prompts.
///
/// File datasets are read once, streamed, and sampled with `seed` (a seeded
/// shuffle, then the first `count` usable records). If a file holds fewer
/// usable records than `count`, the sample repeats in the same order until it
/// has `count` items, as vLLM oversamples; a file with none is an error.
/// Synthetic items are generated per index, so a larger `count` extends the
/// same sequence.
pub fn load(
    spec: &DatasetSpec,
    tokenizer: &Tokenizer,
    endpoint: Endpoint,
    count: usize,
    seed: u64,
) -> Result<Vec<PromptItem>, DatasetError> {
    match spec {
        DatasetSpec::Synthetic { .. } => {
            synthetic::generate(&lengths_of(spec)?, tokenizer, endpoint, count, seed)
        }
        DatasetSpec::ShareGpt { path, output_len } => {
            sharegpt::load(path, *output_len, tokenizer, endpoint, count, seed)
        }
        DatasetSpec::Jsonl { path, output_len } => {
            jsonl::load(path, *output_len, tokenizer, endpoint, count, seed)
        }
    }
}

/// The lengths of a synthetic spec; an error for a file dataset.
fn lengths_of(spec: &DatasetSpec) -> Result<synthetic::Lengths, DatasetError> {
    match spec {
        DatasetSpec::Synthetic {
            input_len,
            output_len,
            range_ratio,
            prefix_len,
        } => Ok(synthetic::Lengths {
            input_len: *input_len,
            output_len: *output_len,
            range_ratio: *range_ratio,
            prefix_len: *prefix_len,
        }),
        _ => Err(DatasetError::InvalidSpec(
            "only synthetic prompts have lengths to generate".to_owned(),
        )),
    }
}

/// Synthetic prompts that `counter` counts as exactly their sampled length (a server's own
/// count, chat template included, or a model's `tokenizer.json`); see [`fitted`]. Items
/// depend only on the seed and the counter, as [`load`]'s do on the seed and the tokenizer.
pub async fn synthetic_counted(
    spec: &DatasetSpec,
    counter: &PromptCounter,
    endpoint: Endpoint,
    count: usize,
    seed: u64,
) -> Result<Vec<PromptItem>, DatasetError> {
    let lengths = lengths_of(spec)?;
    fitted::generate(&lengths, counter, endpoint, count, seed).await
}

/// Replace each item's `input_tokens` with `counter`'s count of its prompt (file datasets
/// measured by the server). Items repeat when a file is oversampled, so each distinct prompt
/// is counted once.
pub async fn recount(
    items: &mut [PromptItem],
    counter: &PromptCounter,
) -> Result<(), DatasetError> {
    use futures::StreamExt;
    use std::collections::{HashMap, HashSet};
    let mut seen = HashSet::new();
    let distinct: Vec<PromptText> = items
        .iter()
        .filter(|i| seen.insert(&i.prompt))
        .map(|i| i.prompt.clone())
        .collect();
    let counts: HashMap<PromptText, u32> = futures::stream::iter(distinct)
        .map(|p| async move {
            match counter.count(&p).await {
                Ok(n) => Ok((p, n)),
                Err(e) => Err(DatasetError::Count(e.to_string())),
            }
        })
        .buffered(fitted::IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    for item in items.iter_mut() {
        if let Some(&n) = counts.get(&item.prompt) {
            item.input_tokens = n;
        }
    }
    Ok(())
}

/// Count as `u32`, saturating: item counts beyond 4 billion tokens are not
/// meaningful prompts, and the filters reject them long before.
fn tokens_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::TokenizerKind;

    #[test]
    fn endpoint_names() {
        use clap::ValueEnum;
        for (endpoint, name) in [
            (Endpoint::Completions, "completions"),
            (Endpoint::Chat, "chat"),
        ] {
            assert_eq!(
                endpoint.to_possible_value().expect("visible").get_name(),
                name
            );
            assert_eq!(
                serde_json::to_string(&endpoint).expect("json"),
                format!("\"{name}\"")
            );
            let back: Endpoint = serde_json::from_str(&format!("\"{name}\"")).expect("parses");
            assert_eq!(back, endpoint);
        }
    }

    #[test]
    fn load_dispatches_every_kind() {
        let tok = Tokenizer::new(TokenizerKind::Cl100kBase).expect("loads");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dataset/testdata");
        let specs = [
            DatasetSpec::Synthetic {
                input_len: 32,
                output_len: 8,
                range_ratio: 0.0,
                prefix_len: 0,
            },
            DatasetSpec::ShareGpt {
                path: dir.join("sharegpt.json"),
                output_len: None,
            },
            DatasetSpec::Jsonl {
                path: dir.join("prompts.jsonl"),
                output_len: 16,
            },
        ];
        for spec in &specs {
            let items = load(spec, &tok, Endpoint::Chat, 5, 3).expect("loads");
            assert_eq!(items.len(), 5, "{spec:?}");
            assert!(
                items
                    .iter()
                    .all(|i| matches!(i.prompt, PromptText::Chat(_)))
            );
            assert_eq!(
                load(spec, &tok, Endpoint::Chat, 0, 3).expect("loads"),
                vec![]
            );
        }
    }
}
