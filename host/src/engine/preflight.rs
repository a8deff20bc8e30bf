//! One request before the first level, so that a server that cannot answer (wrong model name,
//! a refused key, nothing listening, a certificate the client rejects) ends the run in
//! seconds with the server's own words, instead of a whole level of identical failures and a
//! table of empty figures. vLLM's `bench serve` sends such a test prompt too.
//!
//! The request is the run's own shape (adapter, endpoint, headers, sampling flags) around a
//! prompt of its own, not the first prompt of the workload: sending that one early would
//! put it in the server's prefix cache and make its measured TTFT a cache hit. One output
//! token is asked for, so the check costs one prefill on any server.
use std::time::{Duration, Instant};

use super::RunContext;
use super::request::{RequestContext, execute};
use crate::metrics::{RequestError, RequestRecord};
use crate::plugin::GenerationRequest;

/// The pre-flight prompt.
pub const PROMPT: &str = "Reply with one word: ready?";

/// The longest the pre-flight request may take, whatever the run's timeout: a server that
/// needs longer for one token cannot be load-tested meaningfully anyway.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// What a pre-flight request that failed got back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the pre-flight request failed ({}): {}", .0.class, .0.message)]
pub struct PreflightError(pub RequestError);

/// Sends `request` (one token of it) through the run's connections; the time it took, or the
/// classified error with the server's text.
pub async fn check(
    run: &RunContext,
    mut request: GenerationRequest,
) -> Result<Duration, PreflightError> {
    request.max_tokens = 1;
    let start = Instant::now();
    let ctx = RequestContext {
        pool: &run.pool,
        served_model: &run.served_model,
        target: &run.target,
        adapter: &run.adapter,
        level_start: start,
        timeout: run.timeout.min(TIMEOUT),
        metric_mode: run.metric_mode,
    };
    let record = execute(&ctx, &request, RequestRecord::default()).await;
    match record.error {
        Some(e) => Err(PreflightError(e)),
        None => Ok(start.elapsed()),
    }
}
