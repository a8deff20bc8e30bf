//! When a streamed chunk counts as a token arrival.
//!
//! vLLM 0.32's `bench serve` client takes a timestamp for every chunk that carries a choice,
//! whatever its text: a byte-level token that completes no UTF-8 character yet (3–5 per 128
//! tokens on a real vLLM server, `tests/fixtures/wire/vllm-tiny-completions-128.sse`) and a
//! chat stream's role-only first chunk both count. Timing only chunks with visible text
//! measures when a user sees text instead, and makes the ITL list a few percent shorter and
//! mean ITL a few percent above mean TPOT. Both are honest; they must not be mixed, so the
//! mode is chosen per run and named in every result.
//!
//! Adapters mark a chunk with a choice but no text with an empty [`Event::Token`]
//! (`crate::plugin::Event`); adapters written before that rule never do, and under them the
//! two modes agree.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which chunks are token arrivals for TTFT, ITL, TPOT and E2EL.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum MetricMode {
    /// Chunks that carry generated text or reasoning (or a server token count): when a user
    /// sees output.
    #[default]
    Content,
    /// Every chunk that carries a choice, text or not, one arrival per chunk: as vLLM 0.32's
    /// `bench serve` client times them.
    Vllm,
}

impl MetricMode {
    pub fn name(self) -> &'static str {
        match self {
            MetricMode::Content => "content",
            MetricMode::Vllm => "vllm",
        }
    }
}
