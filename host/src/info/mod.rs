//! `info`: what a server is and serves ([`server`]), and this machine ([`host`]). Every fact
//! comes from an endpoint or the OS; what nothing states is reported as unknown.

pub mod host;
pub mod server;

pub use host::{GpuInfo, HostInfo};
pub use server::{ModelInfo, ServerInfo};

/// What `info` reports: a server, and the machine asking.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Info {
    pub server: ServerInfo,
    pub host: HostInfo,
}

impl Info {
    /// Whether the server answered anything at all.
    pub fn reached(&self) -> bool {
        !self.server.answered.is_empty() || self.server.version.is_some()
    }
}
