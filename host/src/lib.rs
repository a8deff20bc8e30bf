//! llm-loadtest: load tests for LLM inference servers.
pub mod cli;
pub mod compare;
pub mod conformance;
pub mod dataset;
pub mod duration;
pub mod engine;
pub mod info;
pub mod metrics;
pub mod plugin;
pub mod recommend;
pub mod report;
pub mod request_shape;
pub mod result;
pub mod runner;
pub mod server_version;
pub mod store;
pub mod tokenize;
