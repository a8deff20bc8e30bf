//! llm-loadtest: load tests for LLM inference servers.
pub mod cli;
