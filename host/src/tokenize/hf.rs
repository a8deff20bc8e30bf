//! A model's own tokenizer, from its Hugging Face `tokenizer.json`.
//!
//! Read from a path the user gives (a file, or a model directory holding one): the tool never
//! downloads, so an air-gapped benchmark host counts exactly as the server does. Built with the
//! `tokenizers` crate's pure-Rust regex backend (`fancy-regex`), so no C library is needed.

use std::path::{Path, PathBuf};

use super::TokenizeError;

/// The file a model directory keeps its tokenizer in.
const TOKENIZER_FILE: &str = "tokenizer.json";

pub(super) struct HfTokenizer {
    path: PathBuf,
    inner: tokenizers::Tokenizer,
}

impl HfTokenizer {
    pub(super) fn load(path: &Path) -> Result<HfTokenizer, TokenizeError> {
        let file = if path.is_dir() {
            path.join(TOKENIZER_FILE)
        } else {
            path.to_path_buf()
        };
        let fail = |reason: String| TokenizeError::LoadFile {
            path: file.clone(),
            reason,
        };
        if !file.is_file() {
            return Err(fail(if path.is_dir() {
                format!("the directory has no {TOKENIZER_FILE}")
            } else {
                "no such file".to_owned()
            }));
        }
        let inner = tokenizers::Tokenizer::from_file(&file).map_err(|e| fail(e.to_string()))?;
        Ok(HfTokenizer { path: file, inner })
    }

    pub(super) fn name(&self) -> String {
        format!("hf:{}", self.path.display())
    }

    fn encode_ids(&self, text: &str, special: bool) -> Result<Vec<u32>, TokenizeError> {
        self.inner
            .encode(text, special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizeError::Encode {
                tokenizer: self.name(),
                len: text.len(),
                reason: e.to_string(),
            })
    }

    /// Tokens of `text`, with the special tokens the tokenizer adds (BOS) when `special`.
    /// A text the tokenizer cannot encode (it has no `unk` for a character) counts as its
    /// bytes, an upper bound that keeps a run going and shows in the workload check.
    pub(super) fn count(&self, text: &str, special: bool) -> usize {
        self.encode_ids(text, special)
            .map_or(text.len(), |ids| ids.len())
    }

    pub(super) fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_ids(text, false).unwrap_or_default()
    }

    pub(super) fn decode(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| TokenizeError::Encode {
                tokenizer: self.name(),
                len: ids.len(),
                reason: e.to_string(),
            })
    }
}
