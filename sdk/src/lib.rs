//! SDK for llm-loadtest adapters (being written).
pub mod framing;
