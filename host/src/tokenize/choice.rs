//! `--tokenizer`: who counts a run's tokens.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::TokenizerKind;

/// Who counts prompt tokens for sizing synthetic prompts and measuring dataset prompts.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TokenizerChoice {
    /// The server, when the adapter can ask it and it answers; otherwise `cl100k_base`, with a
    /// warning (and the per-level workload check shows the server's own counts).
    #[default]
    Auto,
    /// The server, through the adapter's `tokenizer` export; an error if it cannot count.
    Server,
    /// One of tiktoken's vocabularies, compiled in.
    Bpe(TokenizerKind),
    /// A Hugging Face `tokenizer.json`, or a model directory holding one.
    HuggingFace(PathBuf),
}

impl TokenizerChoice {
    /// Whether it names a file or directory (rather than a built-in or the server).
    pub fn is_path(&self) -> bool {
        matches!(self, TokenizerChoice::HuggingFace(_))
    }
}

impl FromStr for TokenizerChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => TokenizerChoice::Auto,
            "server" => TokenizerChoice::Server,
            "cl100k_base" => TokenizerChoice::Bpe(TokenizerKind::Cl100kBase),
            "o200k_base" => TokenizerChoice::Bpe(TokenizerKind::O200kBase),
            "" => return Err("an empty tokenizer name".to_owned()),
            path => {
                let path = PathBuf::from(path);
                if !path.exists() {
                    return Err(format!(
                        "{s:?} is neither auto, server, cl100k_base, o200k_base nor an existing \
                         tokenizer.json or model directory"
                    ));
                }
                TokenizerChoice::HuggingFace(path)
            }
        })
    }
}

impl fmt::Display for TokenizerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerChoice::Auto => f.write_str("auto"),
            TokenizerChoice::Server => f.write_str("server"),
            TokenizerChoice::Bpe(kind) => f.write_str(kind.name()),
            TokenizerChoice::HuggingFace(path) => write!(f, "{}", path.display()),
        }
    }
}

impl TryFrom<String> for TokenizerChoice {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TokenizerChoice> for String {
    fn from(c: TokenizerChoice) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        for name in ["auto", "server", "cl100k_base", "o200k_base"] {
            let c: TokenizerChoice = name.parse().expect("parses");
            assert_eq!(c.to_string(), name);
        }
        let dir = std::env::temp_dir();
        let c: TokenizerChoice = dir.to_str().expect("utf-8").parse().expect("a path");
        assert_eq!(c, TokenizerChoice::HuggingFace(dir));
        let err = "/no/such/tokenizer.json"
            .parse::<TokenizerChoice>()
            .expect_err("missing");
        assert!(err.contains("neither auto"), "{err}");
        let json = serde_json::to_string(&TokenizerChoice::Server).expect("serialises");
        assert_eq!(json, "\"server\"");
        let back: TokenizerChoice = serde_json::from_str("\"o200k_base\"").expect("reads");
        assert_eq!(back, TokenizerChoice::Bpe(TokenizerKind::O200kBase));
    }
}
