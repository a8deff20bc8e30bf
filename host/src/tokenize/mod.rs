//! Token counting on the client: OpenAI's BPE vocabularies (tiktoken-rs, compiled in) or a
//! model's own Hugging Face `tokenizer.json` (the `tokenizers` crate, read from a path, never
//! fetched); and, in [`server`], counting by the server itself through the adapter.
//!
//! Used to build synthetic prompts of exact length, to measure dataset prompts, and to count
//! generated tokens when a server reports no usage (DESIGN §5). Which one a run uses is a
//! [`TokenizerChoice`]; the default (`auto`) asks the server when its adapter can, because a
//! load test is only worth its numbers in the server's own tokens (the model's tokenizer
//! counted 128 cl100k tokens of English prose as ~212 on a real vLLM server).

mod choice;
mod counter;
mod hf;
mod resolve;
pub mod server;

pub use choice::TokenizerChoice;
pub use counter::{CountError, PromptCounter};
pub use resolve::{ResolveError, Resolved, resolve};

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tiktoken_rs::CoreBPE;

/// Which BPE vocabulary to count with (`--tokenizer`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum TokenizerKind {
    /// GPT-4 / GPT-3.5 vocabulary.
    #[value(name = "cl100k_base")]
    #[serde(rename = "cl100k_base")]
    Cl100kBase,
    /// GPT-4o / o-series vocabulary.
    #[value(name = "o200k_base")]
    #[serde(rename = "o200k_base")]
    O200kBase,
}

impl TokenizerKind {
    /// The name used on the command line and in saved results.
    pub fn name(self) -> &'static str {
        match self {
            TokenizerKind::Cl100kBase => "cl100k_base",
            TokenizerKind::O200kBase => "o200k_base",
        }
    }
}

impl fmt::Display for TokenizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("cannot load the {kind} vocabulary: {reason}")]
    Load { kind: TokenizerKind, reason: String },
    #[error("cannot decode {count} token(s) with {kind}: {reason}")]
    Decode {
        kind: TokenizerKind,
        count: usize,
        reason: String,
    },
    #[error("cannot load the Hugging Face tokenizer {path}: {reason}")]
    LoadFile { path: PathBuf, reason: String },
    #[error("{tokenizer} cannot encode a {len}-byte text: {reason}")]
    Encode {
        tokenizer: String,
        len: usize,
        reason: String,
    },
}

/// A loaded vocabulary. Cheap to clone and `Send + Sync`: a BPE vocabulary is a process-wide
/// table, a Hugging Face tokenizer is shared behind an `Arc`.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Bpe {
        kind: TokenizerKind,
        bpe: &'static CoreBPE,
    },
    HuggingFace(Arc<hf::HfTokenizer>),
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

static CL100K: OnceLock<CoreBPE> = OnceLock::new();
static O200K: OnceLock<CoreBPE> = OnceLock::new();

impl Tokenizer {
    /// Loads (first call per kind: tens to hundreds of milliseconds) or reuses
    /// the vocabulary.
    pub fn new(kind: TokenizerKind) -> Result<Tokenizer, TokenizeError> {
        let (cell, build): (&'static OnceLock<CoreBPE>, fn() -> anyhow::Result<CoreBPE>) =
            match kind {
                TokenizerKind::Cl100kBase => (&CL100K, tiktoken_rs::cl100k_base),
                TokenizerKind::O200kBase => (&O200K, tiktoken_rs::o200k_base),
            };
        if let Some(bpe) = cell.get() {
            return Ok(Tokenizer::bpe(kind, bpe));
        }
        // Two threads may both build on first use; one result is kept. Building
        // outside the cell keeps the error path (which OnceLock cannot carry).
        let built = build().map_err(|e| TokenizeError::Load {
            kind,
            reason: format!("{e:#}"),
        })?;
        let bpe = cell.get_or_init(|| built);
        Ok(Tokenizer::bpe(kind, bpe))
    }

    fn bpe(kind: TokenizerKind, bpe: &'static CoreBPE) -> Tokenizer {
        Tokenizer {
            inner: Inner::Bpe { kind, bpe },
        }
    }

    /// A model's own tokenizer: a `tokenizer.json`, or a model directory holding one.
    pub fn from_path(path: &std::path::Path) -> Result<Tokenizer, TokenizeError> {
        Ok(Tokenizer {
            inner: Inner::HuggingFace(Arc::new(hf::HfTokenizer::load(path)?)),
        })
    }

    /// The BPE vocabulary, when this is one: the synthetic generator's exact
    /// construction relies on how tiktoken splits text.
    pub fn kind(&self) -> Option<TokenizerKind> {
        match &self.inner {
            Inner::Bpe { kind, .. } => Some(*kind),
            Inner::HuggingFace(_) => None,
        }
    }

    /// The name recorded with results: `cl100k_base`, or `hf:<path>`.
    pub fn name(&self) -> String {
        match &self.inner {
            Inner::Bpe { kind, .. } => kind.name().to_owned(),
            Inner::HuggingFace(hf) => hf.name(),
        }
    }

    /// Number of tokens in `text`, treating special-token spellings such as
    /// `<|endoftext|>` as ordinary text (datasets and model output may contain
    /// them literally), and adding no special tokens.
    pub fn count(&self, text: &str) -> usize {
        match &self.inner {
            Inner::Bpe { bpe, .. } => bpe.encode_ordinary(text).len(),
            Inner::HuggingFace(hf) => hf.count(text, false),
        }
    }

    /// Tokens a server with this tokenizer counts for `text` sent as a prompt: [`count`]
    /// plus the special tokens (BOS) the tokenizer adds. The BPE vocabularies add none.
    ///
    /// [`count`]: Tokenizer::count
    pub fn count_as_prompt(&self, text: &str) -> usize {
        match &self.inner {
            Inner::Bpe { bpe, .. } => bpe.encode_ordinary(text).len(),
            Inner::HuggingFace(hf) => hf.count(text, true),
        }
    }

    /// Token ids of `text`, special-token spellings treated as ordinary text.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.inner {
            Inner::Bpe { bpe, .. } => bpe.encode_ordinary(text),
            Inner::HuggingFace(hf) => hf.encode(text),
        }
    }

    /// Text of `tokens`. Fails on an id outside the vocabulary, or when the
    /// bytes are not valid UTF-8 (a slice that splits a multi-byte character).
    pub fn decode(&self, tokens: &[u32]) -> Result<String, TokenizeError> {
        match &self.inner {
            Inner::Bpe { kind, bpe } => {
                let decode_error = |reason: String| TokenizeError::Decode {
                    kind: *kind,
                    count: tokens.len(),
                    reason,
                };
                let bytes = bpe
                    .decode_bytes(tokens)
                    .map_err(|e| decode_error(format!("unknown token id {}", e.token)))?;
                String::from_utf8(bytes).map_err(|e| decode_error(e.to_string()))
            }
            Inner::HuggingFace(hf) => hf.decode(tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> [Tokenizer; 2] {
        [
            Tokenizer::new(TokenizerKind::Cl100kBase).expect("cl100k_base loads"),
            Tokenizer::new(TokenizerKind::O200kBase).expect("o200k_base loads"),
        ]
    }

    #[test]
    fn known_counts() {
        let [cl, o2] = both();
        assert_eq!(cl.encode("hello world"), vec![15339, 1917]);
        assert_eq!(cl.count("hello world"), 2);
        assert_eq!(o2.encode("hello world"), vec![24912, 2375]);
        assert_eq!(cl.count(""), 0);
        assert!(cl.encode("").is_empty());
    }

    #[test]
    fn round_trips_unicode() {
        for tok in both() {
            let text = "Grüße, 世界! naïve café — 🦀 <|endoftext|>\n\ttabs";
            let ids = tok.encode(text);
            assert_eq!(tok.count(text), ids.len());
            assert_eq!(tok.decode(&ids).expect("decodes"), text);
        }
    }

    #[test]
    fn special_token_spelling_is_ordinary_text() {
        for tok in both() {
            // As a special token this would be exactly one id.
            assert!(tok.count("<|endoftext|>") > 1, "{:?}", tok.kind());
        }
    }

    #[test]
    fn decode_errors_are_typed() {
        let [cl, _] = both();
        let err = cl.decode(&[u32::MAX]).expect_err("unknown id");
        assert!(err.to_string().contains("unknown token id"), "{err}");
        // "🦀" is several byte-level tokens; one alone is not valid UTF-8.
        let crab = cl.encode("🦀");
        assert!(crab.len() > 1);
        let err = cl.decode(&crab[..1]).expect_err("split character");
        assert!(
            matches!(err, TokenizeError::Decode { count: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn kind_names_for_cli_and_serde() {
        use clap::ValueEnum;
        for kind in [TokenizerKind::Cl100kBase, TokenizerKind::O200kBase] {
            let cli = kind.to_possible_value().expect("visible");
            assert_eq!(cli.get_name(), kind.name());
            assert_eq!(
                TokenizerKind::from_str(kind.name(), false).expect("parses"),
                kind
            );
            let json = serde_json::to_string(&kind).expect("serialises");
            assert_eq!(json, format!("\"{}\"", kind.name()));
            let back: TokenizerKind = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, kind);
            assert_eq!(Tokenizer::new(kind).expect("loads").kind(), Some(kind));
        }
    }

    #[test]
    fn shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tokenizer>();
        let tok = Tokenizer::new(TokenizerKind::Cl100kBase).expect("loads");
        let counts: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let tok = tok.clone();
                    s.spawn(move || tok.count("word ".repeat(10 + i).trim_end()))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        assert_eq!(counts, vec![10, 11]);
    }
}
