//! Readings taken beside a run, on threads of their own, never on the runtime that times
//! requests: [`Periodic`] runs a reading closure at a fixed interval; [`prometheus`] reads
//! Prometheus text (a server's `/metrics`, a DCGM exporter); [`server`] turns a server's metrics
//! into what a load test needs (requests running and waiting, KV-cache use, preemptions,
//! prefix-cache hits, the server's own TTFT and ITL) and a level's share of them.

pub mod beside;
pub mod binding;
pub mod periodic;
pub mod prometheus;
pub mod server;

pub use periodic::Periodic;
