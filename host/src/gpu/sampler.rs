//! GPU readings while a run goes, on a thread of their own: NVML calls take tens to hundreds of
//! microseconds and sometimes block in the driver, so they never run on the async runtime that
//! times requests. Each sample is stamped with seconds since the sampler's `t0`, the same clock
//! the runner stamps level windows with, so a level's share of the samples is a time window.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::nvml::{self, Nvml};

/// One GPU at one sample. `None` where NVML could not say.
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
pub struct Sampler {
    t0: Instant,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Reads every GPU of `nvml` now and then every `interval` until stopped. The first reading
    /// is taken here, before this returns, so a sample precedes anything timed after `start`
    /// (the thread may be scheduled later), and [`Sampler::stop`] takes one after everything
    /// timed before it: every window between the two is spanned.
    pub fn start(nvml: Nvml, interval: Duration) -> std::io::Result<Sampler> {
        let t0 = Instant::now();
        let first = read(&nvml, t0);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("gpu-sampler".into())
            .spawn(move || {
                let mut samples = vec![first];
                let mut next = t0;
                loop {
                    next += interval;
                    let wait = next.saturating_duration_since(Instant::now());
                    let timed_out = matches!(
                        stopped.recv_timeout(wait),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                    samples.push(read(&nvml, t0));
                    // A message or a dropped sender both mean stop.
                    if !timed_out {
                        return samples;
                    }
                }
            })?;
        Ok(Sampler { t0, stop, thread })
    }

    /// The instant sample times count from.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Stops sampling (after one last reading) and returns every sample.
    pub fn stop(self) -> Vec<Sample> {
        let _ = self.stop.send(());
        // A panic in the sampler loses only the telemetry, never the run.
        self.thread.join().unwrap_or_default()
    }
}

fn read(nvml: &Nvml, t0: Instant) -> Sample {
    let t_s = t0.elapsed().as_secs_f64();
    let report = nvml::read_levels(nvml);
    Sample { t_s, gpus: report }
}
