//! Everything read beside one run: the GPUs (local NVML, or a remote DCGM exporter) and the
//! server's metrics, started before the first level, stopped after the last, and cut into each
//! level's window. Kept out of the runner so it only says when levels start and end.

use std::time::{Duration, Instant};

use crate::engine::Target;
use crate::engine::tls::TlsOptions;
use crate::gpu::dcgm::DcgmSampler;
use crate::gpu::{LevelGpu, Sample, Sampler};
use crate::result::{GpuTelemetry, ServerTelemetry};
use crate::telemetry::periodic::offsets;
use crate::telemetry::server::{Scraper, ServerLevel};

/// Where GPU readings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuPlan {
    /// NVML on this machine.
    Local { interval: Duration },
    /// A DCGM exporter's Prometheus endpoint.
    Dcgm { url: String, interval: Duration },
}

/// What a run asks to read beside it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub gpu: Option<GpuPlan>,
    /// The server's metrics URL and interval.
    pub server_metrics: Option<(String, Duration)>,
}

impl Plan {
    /// Every URL the readings will fetch, with the setting that gave it (for a service that
    /// limits where runs may reach).
    pub fn urls(&self) -> Vec<(&'static str, &str)> {
        let dcgm = match &self.gpu {
            Some(GpuPlan::Dcgm { url, .. }) => Some(("gpu-metrics", url.as_str())),
            _ => None,
        };
        dcgm.into_iter()
            .chain(
                self.server_metrics
                    .as_ref()
                    .map(|(u, _)| ("server-metrics", u.as_str())),
            )
            .collect()
    }
}

enum GpuSampler {
    Nvml(Sampler, Vec<String>),
    Dcgm(DcgmSampler, String),
}

/// Readings in progress.
pub struct Beside {
    gpu: Option<(GpuSampler, Duration)>,
    server: Option<(Scraper, String, Duration)>,
}

/// A URL split into the target its requests go to and the path they ask for.
pub fn split_url(
    url: &str,
    headers: &[(String, String)],
    api_key: Option<&str>,
    tls: &TlsOptions,
) -> Result<(Target, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let base = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    );
    let target = Target::new(&base, headers, api_key)
        .and_then(|t| t.with_tls(tls))
        .map_err(|e| e.to_string())?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok((target, path))
}

fn start_nvml(interval: Duration) -> Option<GpuSampler> {
    let nvml = match crate::gpu::open() {
        Ok(n) => n,
        Err(e) => {
            tracing::info!("GPUs not sampled: {e}");
            return None;
        }
    };
    let names = crate::gpu::read(&nvml)
        .gpus
        .into_iter()
        .map(|g| g.name.unwrap_or_else(|| "unknown".to_owned()))
        .collect();
    match Sampler::start(nvml, interval) {
        Ok(s) => Some(GpuSampler::Nvml(s, names)),
        Err(e) => {
            tracing::warn!("GPUs not sampled: the sampling thread did not start: {e}");
            None
        }
    }
}

impl Beside {
    /// Starts every reader of `plan` and waits for each one's first reading. A local machine
    /// without NVML runs unsampled (said in the log); a bad URL or a thread that cannot start
    /// is an error before any load is sent.
    pub async fn start(
        plan: &Plan,
        headers: &[(String, String)],
        api_key: Option<&str>,
        tls: &TlsOptions,
    ) -> Result<Beside, String> {
        let thread = |what: &str, e: std::io::Error| {
            format!("{what}: the reading thread did not start: {e}")
        };
        let gpu = match &plan.gpu {
            None => None,
            Some(GpuPlan::Local { interval }) => start_nvml(*interval).map(|s| (s, *interval)),
            Some(GpuPlan::Dcgm { url, interval }) => {
                // An exporter sits beside the GPUs, not behind the server's authentication.
                let (target, path) =
                    split_url(url, &[], None, tls).map_err(|e| format!("--gpu-metrics {e}"))?;
                let s = DcgmSampler::start(target, path, *interval)
                    .map_err(|e| thread("--gpu-metrics", e))?;
                Some((GpuSampler::Dcgm(s, url.clone()), *interval))
            }
        };
        let server = match &plan.server_metrics {
            None => None,
            Some((url, interval)) => {
                // The server's own headers and key: one authentication usually guards both.
                let (target, path) = split_url(url, headers, api_key, tls)
                    .map_err(|e| format!("--server-metrics {e}"))?;
                let s = Scraper::start(target, path, *interval)
                    .map_err(|e| thread("--server-metrics", e))?;
                Some((s, url.clone(), *interval))
            }
        };
        let mut beside = Beside { gpu, server };
        match &mut beside.gpu {
            Some((GpuSampler::Nvml(s, _), _)) => s.ready().await,
            Some((GpuSampler::Dcgm(s, _), _)) => s.ready().await,
            None => {}
        }
        if let Some((s, _, _)) = &mut beside.server {
            s.ready().await;
        }
        Ok(beside)
    }

    /// Stops every reader; `starts` are the levels' start instants, for placing them.
    pub fn finish(self, starts: &[Instant]) -> Readings {
        let gpu = self.gpu.map(|(sampler, interval)| {
            let (t0, samples, names, source): (Instant, Vec<Sample>, Vec<String>, String) =
                match sampler {
                    GpuSampler::Nvml(s, names) => {
                        let t0 = s.t0();
                        (t0, s.stop(), names, "nvml".to_owned())
                    }
                    GpuSampler::Dcgm(s, url) => {
                        let t0 = s.t0();
                        let (samples, names) = s.stop();
                        (t0, samples, names, format!("dcgm {url}"))
                    }
                };
            GpuTelemetry {
                source,
                interval_s: interval.as_secs_f64(),
                names,
                samples,
                level_offsets_s: offsets(t0, starts),
            }
        });
        let server = self.server.map(|(scraper, url, interval)| {
            let t0 = scraper.t0();
            let (scrapes, server) = scraper.stop();
            ServerTelemetry {
                url,
                server: server.map(str::to_owned),
                interval_s: interval.as_secs_f64(),
                scrapes,
                level_offsets_s: offsets(t0, starts),
            }
        });
        Readings { gpu, server }
    }
}

/// What was read beside a run.
pub struct Readings {
    pub gpu: Option<GpuTelemetry>,
    pub server: Option<ServerTelemetry>,
}

impl Readings {
    /// Level `i`'s share: its wall time and the output tokens its requests generated.
    pub fn level(
        &self,
        i: usize,
        wall_s: f64,
        output_tokens: u64,
    ) -> (Option<LevelGpu>, Option<ServerLevel>) {
        let gpu = self.gpu.as_ref().and_then(|g| {
            let from = *g.level_offsets_s.get(i)?;
            Some(crate::gpu::level(
                &g.samples,
                from,
                from + wall_s,
                output_tokens,
            ))
        });
        let server = self.server.as_ref().and_then(|m| {
            let from = *m.level_offsets_s.get(i)?;
            Some(crate::telemetry::server::level(
                &m.scrapes,
                from,
                from + wall_s,
            ))
        });
        (gpu, server)
    }
}
