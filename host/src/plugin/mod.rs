//! The WebAssembly plugin runtime (wasmtime, component model, WIT v0.1).
//!
//! Plugins are components targeting `wit/v0.1/plugin.wit`: server adapters
//! (build requests, parse response streams), SLO policies and recommendation policies. The host owns
//! sockets and clocks; a plugin only shapes bytes, in a sandbox with a
//! per-call deadline, a per-instance memory cap and no file system or
//! network. See [`Runtime`] for the entry point.
//!
//! ```no_run
//! use llm_loadtest::plugin::{Runtime, RuntimeConfig};
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let openai = rt.load_adapter("openai")?;
//! let mut parser = openai.new_parser()?;
//! let events = parser.feed(br#"{"choices":[{"delta":{"content":"Hi"}}]}"#)?;
//! # Ok::<(), llm_loadtest::plugin::PluginError>(())
//! ```

mod adapter;
mod bindings;
mod disk_cache;
mod embedded;
mod epoch;
mod error;
mod guest_output;
mod inspect;
mod pool;
mod recommend;
mod replay;
mod runtime;
mod sandbox;
mod slo;
mod types;
mod wasi_nonblocking;

pub use adapter::{
    Adapter, Batch, Fed, MAX_EVENTS_PER_CALL, MAX_REQUEST_BODY, MAX_REQUEST_HEADERS,
    MAX_TEXT_PER_CALL, MAX_TOKENIZE_STEPS, StreamParser,
};
pub use disk_cache::CacheStats;
pub use embedded::{EmbeddedPlugin, embedded_plugins};
pub use error::PluginError;
pub use inspect::PluginKind;
pub use recommend::{MAX_PROBE_REQUESTS, RecommendPolicy};
pub use replay::{ReplayError, ReplayReport, ReplayStep, replay};
pub use runtime::{LoadedPlugin, Runtime, RuntimeConfig, default_cache_dir};
pub use slo::SloPolicy;
pub use types::{
    AdapterInfo, Event, Framing, GenerationRequest, HttpRequest, Measurement, Message, Objective,
    Outcome, PolicyInfo, PolicyStep, ProbeSummary, Prompt, RecommendGoal, TokenDelta,
    TokenizeQuery, TokenizeStep, Usage, Verdict,
};

/// The contract versions this host loads, oldest first.
pub const WIT_VERSIONS: &[&str] = sandbox::WIT_VERSIONS;

/// Which plugin a result came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginIdentity {
    /// The name the plugin gives itself (`info().name`).
    pub name: String,
    pub version: String,
    /// The contract version it targets (`0.1.0` or `0.2.0`).
    pub wit_version: String,
    /// sha256 of the component's bytes, hex.
    pub sha256: String,
    /// `embedded`, or the path it was loaded from.
    pub source: String,
}

// The load engine shares adapters and policies across tasks and moves
// parsers between them; keep that true at compile time.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    const fn movable<T: Send>() {}
    shared::<Runtime>();
    shared::<Adapter>();
    shared::<SloPolicy>();
    shared::<RecommendPolicy>();
    movable::<StreamParser>();
};
