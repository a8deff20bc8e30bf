//! A multi-protocol LLM inference server simulator with a known capacity.
//!
//! It speaks the OpenAI API as vLLM does, plus vLLM's `/metrics`, on one port, and times its
//! tokens either on an exact fixed clock (`--ttft`, `--itl`) or with a continuous-batching
//! model of a GPU server (`--profile h100-llama3-8b`). It shares no code with the load
//! engine: it is the ground truth the engine's timing is checked against.
//!
//! ```no_run
//! # async fn demo() -> Result<(), llm_loadtest_sim::SimError> {
//! use std::time::Duration;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let sim = llm_loadtest_sim::start(
//!     llm_loadtest_sim::SimConfig::fixed(Duration::from_millis(50), Duration::from_millis(10)),
//!     listener,
//! )
//! .await?;
//! println!("serving on {}", sim.local_addr());
//! sim.shutdown().await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod app;
mod cli;
mod clock;
mod config;
mod duration;
mod error;
mod faults;
mod generation;
mod profile;
mod protocol;
mod scheduler;
mod server;
mod stats;
mod tokens;

pub use cli::{SimArgs, run_cli};
pub use config::{SimConfig, Timing};
pub use duration::parse_duration;
pub use error::SimError;
pub use faults::FaultKind;
pub use profile::{BatchParams, PROFILES, Profile, profile};
pub use server::{SimHandle, start};
pub use stats::{LatenessSummary, StatsSnapshot};
