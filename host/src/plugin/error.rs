//! What can go wrong with a plugin, said with the plugin's name and the call.

use std::path::PathBuf;
use std::time::Duration;

/// A plugin failed to load or a call into it failed. Every variant names the
/// plugin (its name from `info()`, or the spec it was loaded from when that is
/// not known yet) so an error in a run's record log says which plugin did it.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The spec is neither an embedded plugin nor an existing file.
    #[error(
        "plugin `{spec}` not found: it is not an embedded plugin ({known}) and no file exists at that path"
    )]
    NotFound { spec: String, known: String },
    /// The file exists but could not be read.
    #[error("cannot read plugin file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly component.
    #[error("{plugin}: {reason}")]
    NotAComponent { plugin: String, reason: String },
    /// The component targets a version of the contract this host lacks.
    #[error(
        "{plugin} targets the plugin contract llm-loadtest:plugin@{found}; this host supports {supported}"
    )]
    WrongWitVersion {
        plugin: String,
        found: String,
        supported: &'static str,
    },
    /// The component is a plugin, but not the kind asked for.
    #[error("{plugin} does not export {expected} (it exports: {exports})")]
    WrongKind {
        plugin: String,
        expected: &'static str,
        exports: String,
    },
    /// The component imports something plugins are not granted.
    #[error(
        "{plugin} imports `{import}`, which plugins are not granted (a plugin may import only \
         llm-loadtest:plugin/host and WASI cli, io, random and clocks)"
    )]
    ForbiddenImport { plugin: String, import: String },
    /// Cranelift rejected the component.
    #[error("{plugin}: compiling the component failed: {message}")]
    Compile { plugin: String, message: String },
    /// Linking or instantiating the component failed.
    #[error("{plugin}: instantiating the component failed: {message}")]
    Instantiate { plugin: String, message: String },
    /// The guest trapped (a panic, an unreachable, a stack overflow ...).
    #[error("{plugin} trapped in {call}: {message}")]
    Trap {
        plugin: String,
        call: &'static str,
        message: String,
    },
    /// The call ran past the per-call deadline and was interrupted.
    #[error("{plugin} ran past its {deadline:?} deadline in {call}")]
    Timeout {
        plugin: String,
        call: &'static str,
        deadline: Duration,
    },
    /// The guest tried to grow its memory past the per-instance cap.
    #[error("{plugin} exceeded its memory limit of {limit} bytes in {call}")]
    MemoryLimit {
        plugin: String,
        call: &'static str,
        limit: usize,
    },
    /// The plugin returned an error value (`result::err`).
    #[error("{plugin}: {call} failed: {message}")]
    Guest {
        plugin: String,
        call: &'static str,
        message: String,
    },
    /// The instance this stream parser lived in trapped and was replaced, so
    /// the parser's state is gone.
    #[error(
        "{plugin}: the instance holding this stream parser was replaced after a trap; its stream is lost"
    )]
    InstanceLost { plugin: String },
    /// The guest returned more than the host accepts from one call.
    #[error("{plugin}: {call} returned {what}, over the limit of {limit}")]
    OutputTooLarge {
        plugin: String,
        call: &'static str,
        what: String,
        limit: usize,
    },
    /// The guest answered something the host will not act on (a recommendation policy asking
    /// for a probe outside its goal, a bracket that contradicts itself).
    #[error("{plugin}: {call} answered what the host will not act on: {message}")]
    BadAnswer {
        plugin: String,
        call: &'static str,
        message: String,
    },
    /// The on-disk cache of compiled plugins could not be set up.
    #[error("plugin cache {}: {message}", path.display())]
    Cache { path: PathBuf, message: String },
    /// The wasmtime engine could not be created.
    #[error("starting the plugin runtime failed: {message}")]
    Engine { message: String },
}

impl PluginError {
    /// The error class recorded for a failed request: `parse` when the
    /// adapter could not understand a response (its `feed` or `finish`
    /// returned an error), `plugin` for everything else.
    pub fn class(&self) -> &'static str {
        match self {
            PluginError::Guest { call, .. }
                if matches!(*call, "feed" | "feed-batch" | "finish") =>
            {
                "parse"
            }
            _ => "plugin",
        }
    }

    /// True when the instance that ran the call was discarded because of it
    /// (a trap, a timeout, the memory cap).
    pub fn killed_instance(&self) -> bool {
        matches!(
            self,
            PluginError::Trap { .. }
                | PluginError::Timeout { .. }
                | PluginError::MemoryLimit { .. }
        )
    }
}
