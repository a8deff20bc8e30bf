//! The OpenAI completions / chat-completions protocol, shared by every
//! adapter for an OpenAI-compatible server.
//!
//! The vLLM adapter compiles this same module (by path) rather than linking
//! this crate: linking it would also link this crate's component exports,
//! and two adapters cannot export the same functions from one component.

pub mod parse;
pub mod request;
pub mod tokenize;
