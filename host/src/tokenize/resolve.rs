//! Turning `--tokenizer` into the tokenizer and counter a run uses.

use std::sync::Arc;

use super::server::ServerCounter;
use super::{CountError, PromptCounter, TokenizeError, Tokenizer, TokenizerChoice, TokenizerKind};
use crate::dataset::{ChatMessage, Endpoint, PromptText};
use crate::engine::{Target, new_client};
use crate::plugin::Adapter;

/// Requests in flight to a server's tokenizer while prompts are sized.
const COUNT_CONNECTIONS: usize = 8;

/// What counts a run's tokens.
#[derive(Clone)]
pub struct Resolved {
    /// Counts dataset prompts before they are recounted, and generated text when the server
    /// reports no usage.
    pub tokenizer: Tokenizer,
    /// Sizes synthetic prompts and recounts dataset prompts; `None` for a BPE vocabulary,
    /// whose exact construction needs no counter.
    pub counter: Option<PromptCounter>,
    /// The name recorded with the result.
    pub name: String,
    /// Why `auto` did not use the server, for the log.
    pub fallback: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Load(#[from] TokenizeError),
    #[error(
        "--tokenizer server: the {adapter} adapter cannot ask its server to count tokens \
         (it exports no tokenizer interface); pass --tokenizer with a tokenizer.json or model \
         directory, or cl100k_base"
    )]
    NoServerTokenizer { adapter: String },
    #[error("--tokenizer server: {0}")]
    Server(CountError),
    #[error(transparent)]
    Client(#[from] crate::engine::ClientError),
}

/// Loads or probes what `choice` names. `auto` uses the server when its adapter can ask it and
/// a probe prompt is counted; otherwise cl100k_base, with the reason in `fallback`.
pub async fn resolve(
    choice: &TokenizerChoice,
    adapter: &Arc<Adapter>,
    target: &Target,
    model: &str,
    endpoint: Endpoint,
) -> Result<Resolved, ResolveError> {
    let bpe = |kind: TokenizerKind, fallback: Option<String>| -> Result<Resolved, ResolveError> {
        Ok(Resolved {
            tokenizer: Tokenizer::new(kind)?,
            counter: None,
            name: kind.name().to_owned(),
            fallback,
        })
    };
    match choice {
        TokenizerChoice::Bpe(kind) => bpe(*kind, None),
        TokenizerChoice::HuggingFace(path) => {
            let path = path.clone();
            let tokenizer = tokio::task::spawn_blocking(move || Tokenizer::from_path(&path))
                .await
                .map_err(|e| TokenizeError::LoadFile {
                    path: Default::default(),
                    reason: format!("the loading task failed: {e}"),
                })??;
            Ok(Resolved {
                name: tokenizer.name(),
                counter: Some(PromptCounter::Local(tokenizer.clone())),
                tokenizer,
                fallback: None,
            })
        }
        TokenizerChoice::Server | TokenizerChoice::Auto => {
            let strict = *choice == TokenizerChoice::Server;
            let counter = ServerCounter::new(
                adapter.clone(),
                new_client(target, COUNT_CONNECTIONS)?,
                target.clone(),
                model.to_owned(),
            );
            let Some(counter) = counter else {
                let adapter = adapter.info().name.clone();
                if strict {
                    return Err(ResolveError::NoServerTokenizer { adapter });
                }
                return bpe(
                    TokenizerKind::Cl100kBase,
                    Some(format!(
                        "the {adapter} adapter cannot ask its server to count tokens"
                    )),
                );
            };
            let probe = match endpoint {
                Endpoint::Completions => PromptText::Text("Hello".to_owned()),
                Endpoint::Chat => PromptText::Chat(vec![ChatMessage::user("Hello")]),
            };
            let counter = PromptCounter::Server(Box::new(counter));
            match counter.count(&probe).await {
                Ok(_) => Ok(Resolved {
                    tokenizer: Tokenizer::new(TokenizerKind::Cl100kBase)?,
                    name: counter.name(),
                    counter: Some(counter),
                    fallback: None,
                }),
                Err(e) if strict => Err(ResolveError::Server(e)),
                Err(e) => bpe(TokenizerKind::Cl100kBase, Some(e.to_string())),
            }
        }
    }
}
