//! `info`: what a server is and serves ([`server`]), and this machine ([`host`]). Every fact
//! comes from an endpoint or the OS; what nothing states is reported as unknown.

pub mod host;
pub mod server;

pub use host::{GpuInfo, HostInfo};
pub use server::{ModelInfo, ServerInfo};
