//! Remote GPUs through NVIDIA's DCGM exporter: its Prometheus text read into the same samples
//! as NVML's, for a client that runs on another machine than the GPUs. The field names and units
//! are DCGM's documented ones: utilisation in %, framebuffer memory in MiB, power in W, the
//! total-energy counter in mJ; each series is one GPU, named by its `gpu` label.

use std::time::{Duration, Instant};

use super::sampler::{Reading, Sample};
use crate::engine::Target;
use crate::telemetry::Periodic;
use crate::telemetry::prometheus::{Endpoint, Exposition};

pub const UTIL: &str = "DCGM_FI_DEV_GPU_UTIL";
pub const FB_USED_MIB: &str = "DCGM_FI_DEV_FB_USED";
pub const POWER_W: &str = "DCGM_FI_DEV_POWER_USAGE";
pub const ENERGY_MJ: &str = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION";

/// The GPUs one exporter scrape lists, by index.
pub fn readings(e: &Exposition) -> Vec<Reading> {
    let util = e.by_label(UTIL, "gpu");
    let fb = e.by_label(FB_USED_MIB, "gpu");
    let power = e.by_label(POWER_W, "gpu");
    let energy = e.by_label(ENERGY_MJ, "gpu");
    let mut indices: Vec<u32> = [&util, &fb, &power, &energy]
        .iter()
        .flat_map(|m| m.keys())
        .filter_map(|k| k.parse().ok())
        .collect();
    indices.sort_unstable();
    indices.dedup();
    indices
        .into_iter()
        .map(|index| {
            let key = index.to_string();
            Reading {
                index,
                sm_utilization_pct: util.get(&key).map(|u| u.round() as u32),
                memory_used_bytes: fb.get(&key).map(|mib| (mib * 1024.0 * 1024.0) as u64),
                power_w: power.get(&key).copied(),
                energy_j: energy.get(&key).map(|mj| mj / 1e3),
            }
        })
        .collect()
}

/// The GPUs' model names, by index, from the exporter's `modelName` label.
pub fn names(e: &Exposition) -> Vec<(u32, String)> {
    [UTIL, POWER_W, FB_USED_MIB]
        .iter()
        .flat_map(|f| e.labels_by(f, "gpu", "modelName"))
        .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
        .collect::<std::collections::BTreeMap<u32, String>>()
        .into_iter()
        .collect()
}

/// Scraping an exporter every interval on a thread of its own; a failed scrape is a sample with
/// no GPU, and the run goes on.
pub struct DcgmSampler {
    periodic: Periodic<(Sample, Vec<(u32, String)>)>,
}

impl DcgmSampler {
    pub fn start(target: Target, path: String, interval: Duration) -> std::io::Result<DcgmSampler> {
        let endpoint = Endpoint::new(target, path, interval.max(Duration::from_secs(1)))?;
        let periodic = Periodic::start("dcgm-sampler", interval, move |t_s| {
            match endpoint.scrape() {
                Ok(e) => (
                    Sample {
                        t_s,
                        gpus: readings(&e),
                    },
                    names(&e),
                ),
                Err(why) => {
                    tracing::debug!("DCGM scrape failed: {why}");
                    (
                        Sample {
                            t_s,
                            gpus: Vec::new(),
                        },
                        Vec::new(),
                    )
                }
            }
        })?;
        Ok(DcgmSampler { periodic })
    }

    pub async fn ready(&mut self) {
        self.periodic.ready().await;
    }

    pub fn t0(&self) -> Instant {
        self.periodic.t0()
    }

    /// Stops: every sample, and the GPUs' names as the exporter last gave them.
    pub fn stop(self) -> (Vec<Sample>, Vec<String>) {
        let all = self.periodic.stop();
        let names = all
            .iter()
            .rev()
            .find(|(_, n)| !n.is_empty())
            .map(|(_, n)| n.iter().map(|(_, name)| name.clone()).collect())
            .unwrap_or_default();
        (all.into_iter().map(|(s, _)| s).collect(), names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::prometheus::parse;

    #[test]
    fn exporter_text_becomes_readings_in_our_units() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/dcgm/exporter.txt"
        );
        let e = parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        let r = readings(&e);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].index, 1);
        assert_eq!(r[0].sm_utilization_pct, Some(87));
        assert_eq!(r[0].memory_used_bytes, Some(40_000 * 1024 * 1024));
        assert_eq!(r[0].power_w, Some(612.5));
        assert_eq!(r[0].energy_j, Some(123_456.789));
        assert_eq!(
            names(&e),
            [
                (0, "NVIDIA H100 80GB HBM3".to_owned()),
                (1, "NVIDIA H100 80GB HBM3".to_owned())
            ]
        );
    }
}
