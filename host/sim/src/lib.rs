//! A multi-protocol LLM inference server simulator with a known capacity.
//!
//! On one port it speaks the OpenAI API as vLLM does (plus vLLM's `/metrics`), SGLang's and
//! TGI's `/generate`, Ollama's `/api/*`, and Triton's generate extension. It times its tokens
//! either on an exact fixed clock (`--ttft`, `--itl`) or with a continuous-batching model of a
//! GPU server (`--profile h100-llama3-8b`) whose capacity is known in closed form
//! ([`capacity`]). It shares no code with the load engine: it is the ground truth the
//! engine's timing is checked against.
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
mod batch_model;
mod capacity;
mod cli;
mod clock;
mod closed_loop;
mod config;
mod connection;
mod duration;
mod error;
mod faults;
mod generation;
pub mod hostile;
mod profile;
mod protocol;
mod ramped;
mod scheduler;
mod server;
mod stats;
mod stream;
mod tls;
mod tokens;

pub use batch_model::{BatchModel, Oversize, StepRecord, Token};
pub use capacity::{Capacity, Prediction, Slo, Workload, capacity, predict, slots};
pub use cli::{SimArgs, print_capacity, run_cli};
pub use closed_loop::{ClosedLoop, ModelRequest, ModelRun, closed_loop};
pub use config::{SimConfig, Timing};
pub use duration::parse_duration;
pub use error::SimError;
pub use faults::FaultKind;
pub use profile::{BatchParams, PROFILES, Profile, profile};
pub use ramped::{CLIENT_GAP, Ramped, ramped, ramped_capacity};
pub use server::{SimHandle, start};
pub use stats::{LatenessSummary, StatsSnapshot};
