//! The simulator's error type.

/// What went wrong while configuring, starting or running the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `--profile` named a profile the simulator does not know.
    #[error("unknown profile `{name}` (known profiles: {known})")]
    UnknownProfile {
        /// The name given.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// A combination of options that cannot describe a server.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The listener's local address could not be read.
    #[error("cannot read the listening socket's address: {0}")]
    LocalAddr(std::io::Error),
    /// The HTTP server stopped with an I/O error.
    #[error("the simulator's HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// The background server task panicked or was cancelled.
    #[error("the simulator's server task ended abnormally: {0}")]
    Task(String),
    /// Ctrl-C could not be watched for.
    #[error("cannot install the Ctrl-C handler: {0}")]
    Signal(std::io::Error),
    /// An `--slo` argument that does not parse.
    #[error("invalid SLO `{input}`: {reason}")]
    Slo {
        /// The text given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// The clock thread could not be started.
    #[error("cannot start the simulator's clock thread: {0}")]
    Thread(std::io::Error),
    /// Writing to standard output failed.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}
