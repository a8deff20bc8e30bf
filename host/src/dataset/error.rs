use std::io;
use std::path::PathBuf;

use crate::tokenize::TokenizeError;

/// Why a dataset could not be built. Every variant names the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("invalid dataset settings: {0}")]
    InvalidSpec(String),
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a ShareGPT JSON array: {source}", path.display())]
    ShareGptJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    JsonlLine {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{}: no usable prompts ({reason})", path.display())]
    NoUsableItems { path: PathBuf, reason: String },
    #[error("cannot build a synthetic prompt of exactly {target} tokens: {reason}")]
    SyntheticLength { target: usize, reason: String },
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error("cannot count a dataset prompt: {0}")]
    Count(String),
}
