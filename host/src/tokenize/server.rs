//! Counting by the server itself: the adapter's optional `tokenizer` export shapes a request
//! (vLLM, SGLang, llama.cpp and TGI `/tokenize`), the host sends it with the run's headers and
//! key, and the adapter reads the count, chat template included. These requests precede a run
//! and are never timed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::counter::CountError;
use crate::engine::client::exchange;
use crate::engine::{HyperClient, Target};
use crate::plugin::{Adapter, MAX_TOKENIZE_STEPS, Prompt, TokenizeQuery, TokenizeStep};

/// How long one tokenize request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest tokenize answer read (vLLM lists every token id).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// Asks one server, for one model, how many tokens it counts.
#[derive(Clone)]
pub struct ServerCounter {
    adapter: Arc<Adapter>,
    client: HyperClient,
    target: Target,
    model: String,
}

impl ServerCounter {
    /// `None` when the adapter exports no tokenizer.
    pub fn new(
        adapter: Arc<Adapter>,
        client: HyperClient,
        target: Target,
        model: String,
    ) -> Option<ServerCounter> {
        adapter.can_tokenize().then_some(ServerCounter {
            adapter,
            client,
            target,
            model,
        })
    }

    /// The name recorded with results.
    pub fn name(&self) -> String {
        format!("server ({} adapter)", self.adapter.info().name)
    }

    /// The server's count for `prompt` as a generation request would carry it.
    pub async fn count(&self, prompt: Prompt) -> Result<u32, CountError> {
        let query = TokenizeQuery {
            model: self.model.clone(),
            prompt,
        };
        let mut request = self.adapter.build_tokenize_request(&query)?;
        for step in 0..MAX_TOKENIZE_STEPS {
            let path = request.path.clone();
            let (status, body) = self
                .send(request)
                .await
                .map_err(|reason| CountError::Http {
                    url: format!("{}{}", self.target.base_url(), path),
                    reason,
                })?;
            match self
                .adapter
                .parse_tokenize_response(&query, step, status, &body)?
            {
                TokenizeStep::Count(n) => return Ok(n),
                TokenizeStep::Then(next) => request = next,
            }
        }
        Err(CountError::TooManySteps {
            steps: MAX_TOKENIZE_STEPS,
        })
    }

    async fn send(&self, request: crate::plugin::HttpRequest) -> Result<(u16, Bytes), String> {
        let req = self.target.build(request).map_err(|e| e.to_string())?;
        exchange(&self.client, req, MAX_ANSWER, REQUEST_TIMEOUT).await
    }
}
