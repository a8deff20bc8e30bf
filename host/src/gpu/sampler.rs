//! GPU readings while a run goes, on a thread of their own ([`Periodic`]): NVML calls take tens
//! to hundreds of microseconds and sometimes block in the driver, so they never run on the async
//! runtime that times requests.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::nvml::{self, Nvml};
use crate::telemetry::Periodic;

/// One GPU at one sample. `None` where the source could not say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reading {
    pub index: u32,
    pub sm_utilization_pct: Option<u32>,
    pub memory_used_bytes: Option<u64>,
    pub power_w: Option<f64>,
    /// The total-energy counter, joules (Volta and later, recent drivers).
    pub energy_j: Option<f64>,
}

/// Every GPU at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t_s: f64,
    pub gpus: Vec<Reading>,
}

/// A running sampler; [`Sampler::stop`] ends it and returns what it read.
pub struct Sampler(Periodic<Sample>);

impl Sampler {
    /// Reads every GPU of `nvml` now and then every `interval` until stopped.
    pub fn start(nvml: Nvml, interval: Duration) -> std::io::Result<Sampler> {
        Periodic::start("gpu-sampler", interval, move |t_s| Sample {
            t_s,
            gpus: nvml::read_levels(&nvml),
        })
        .map(Sampler)
    }

    /// Resolves once the first sample is taken.
    pub async fn ready(&mut self) {
        self.0.ready().await;
    }

    /// The instant sample times count from.
    pub fn t0(&self) -> Instant {
        self.0.t0()
    }

    /// Stops sampling (after one last reading) and returns every sample.
    pub fn stop(self) -> Vec<Sample> {
        self.0.stop()
    }
}
