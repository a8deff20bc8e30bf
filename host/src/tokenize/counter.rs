//! One way to count a whole prompt, local or remote, for sizing prompts to a target.

use super::server::ServerCounter;
use super::{TokenizeError, Tokenizer};
use crate::dataset::PromptText;
use crate::plugin::{PluginError, Prompt};

#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error("the adapter could not count: {0}")]
    Plugin(#[from] PluginError),
    #[error("asking {url} to count tokens failed: {reason}")]
    Http { url: String, reason: String },
    #[error("the adapter's tokenize exchange did not end within {steps} requests")]
    TooManySteps { steps: u32 },
    #[error(transparent)]
    Local(#[from] TokenizeError),
}

/// Counts what a server would count for a prompt.
#[derive(Clone)]
pub enum PromptCounter {
    /// The server's own count, template and special tokens included.
    Server(Box<ServerCounter>),
    /// A local tokenizer: the text with the special tokens it adds; for a chat, the message
    /// contents only (a local tokenizer renders no chat template).
    Local(Tokenizer),
}

impl PromptCounter {
    pub fn name(&self) -> String {
        match self {
            PromptCounter::Server(s) => s.name(),
            PromptCounter::Local(t) => t.name(),
        }
    }

    /// Whether a chat prompt's count includes the chat template.
    pub fn counts_template(&self) -> bool {
        matches!(self, PromptCounter::Server(_))
    }

    pub async fn count(&self, prompt: &PromptText) -> Result<u32, CountError> {
        match self {
            PromptCounter::Server(s) => s.count(Prompt::from(prompt)).await,
            PromptCounter::Local(t) => {
                let n = match prompt {
                    PromptText::Text(text) => t.count_as_prompt(text),
                    PromptText::Chat(messages) => {
                        messages.iter().map(|m| t.count(&m.content)).sum()
                    }
                };
                Ok(u32::try_from(n).unwrap_or(u32::MAX))
            }
        }
    }
}
