//! Reading NVML.

use std::collections::BTreeMap;
use std::ffi::OsString;

use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;

pub use nvml_wrapper::Nvml;

use super::state::{GpuProcess, GpuReport, GpuState};

/// The environment variable naming the NVML library to load instead of the system's.
pub const NVML_LIB_ENV: &str = "LLM_LOADTEST_NVML_LIB";

/// Why no GPU can be read at all.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU telemetry: NVML could not be loaded from {lib} ({reason})")]
    Unavailable { lib: String, reason: String },
}

/// Loads and initialises NVML: `$LLM_LOADTEST_NVML_LIB`, or the driver's library.
pub fn open() -> Result<Nvml, GpuError> {
    let custom = std::env::var_os(NVML_LIB_ENV).filter(|v| !v.is_empty());
    let lib = custom.as_ref().map_or_else(
        || "libnvidia-ml.so.1".to_owned(),
        |p| p.to_string_lossy().into_owned(),
    );
    let mut builder = Nvml::builder();
    let path: OsString;
    if let Some(p) = custom {
        path = p;
        builder.lib_path(&path);
    }
    builder.init().map_err(|e| GpuError::Unavailable {
        lib,
        reason: reason(&e),
    })
}

/// What an NVML error means to a reader.
fn reason(e: &NvmlError) -> String {
    match e {
        NvmlError::NotSupported => "not supported on this GPU".to_owned(),
        NvmlError::FailedToLoadSymbol(_) => "this driver's NVML lacks the function".to_owned(),
        NvmlError::GpuLost => "the GPU is lost (fell off the bus)".to_owned(),
        NvmlError::NoPermission => "no permission".to_owned(),
        NvmlError::DriverNotLoaded => "the NVIDIA driver is not loaded".to_owned(),
        NvmlError::LibloadingError(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// Records `field` as unavailable when `r` failed, and returns its value.
fn field<T>(
    unavailable: &mut BTreeMap<&'static str, String>,
    name: &'static str,
    r: Result<T, NvmlError>,
) -> Option<T> {
    r.map_err(|e| unavailable.insert(name, reason(&e))).ok()
}

/// Every local GPU now.
pub fn read(nvml: &Nvml) -> GpuReport {
    let mut unavailable = BTreeMap::new();
    let driver_version = field(
        &mut unavailable,
        "driver_version",
        nvml.sys_driver_version(),
    );
    let cuda_version = field(
        &mut unavailable,
        "cuda_version",
        nvml.sys_cuda_driver_version(),
    )
    .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10));
    let count = field(&mut unavailable, "gpus", nvml.device_count()).unwrap_or(0);
    let gpus = (0..count).map(|i| gpu(nvml, i)).collect();
    GpuReport {
        at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        driver_version,
        cuda_version,
        gpus,
        unavailable,
    }
}

/// The readings the sampler keeps, for every GPU: fewer calls than [`read`], no strings.
pub(crate) fn read_levels(nvml: &Nvml) -> Vec<super::sampler::Reading> {
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .map(|index| {
            let d = nvml.device_by_index(index).ok();
            super::sampler::Reading {
                index,
                sm_utilization_pct: d
                    .as_ref()
                    .and_then(|d| d.utilization_rates().ok())
                    .map(|u| u.gpu),
                memory_used_bytes: d
                    .as_ref()
                    .and_then(|d| d.memory_info().ok())
                    .map(|m| m.used),
                power_w: d
                    .as_ref()
                    .and_then(|d| d.power_usage().ok())
                    .map(|mw| f64::from(mw) / 1e3),
                energy_j: d
                    .as_ref()
                    .and_then(|d| d.total_energy_consumption().ok())
                    .map(|mj| mj as f64 / 1e3),
            }
        })
        .collect()
}

fn gpu(nvml: &Nvml, index: u32) -> GpuState {
    let mut s = GpuState {
        index,
        ..GpuState::default()
    };
    let d = match nvml.device_by_index(index) {
        Ok(d) => d,
        Err(e) => {
            s.unavailable.insert("device", reason(&e));
            return s;
        }
    };
    let u = &mut s.unavailable;
    s.name = field(u, "name", d.name());
    s.uuid = field(u, "uuid", d.uuid());
    if let Some(m) = field(u, "memory", d.memory_info()) {
        s.memory_used_bytes = Some(m.used);
        s.memory_total_bytes = Some(m.total);
    }
    if let Some(r) = field(u, "utilization", d.utilization_rates()) {
        s.sm_utilization_pct = Some(r.gpu);
        s.memory_utilization_pct = Some(r.memory);
    }
    s.power_w = field(u, "power", d.power_usage()).map(|mw| f64::from(mw) / 1e3);
    s.power_limit_w =
        field(u, "power_limit", d.enforced_power_limit()).map(|mw| f64::from(mw) / 1e3);
    s.temperature_c = field(u, "temperature", d.temperature(TemperatureSensor::Gpu));
    s.sm_clock_mhz = field(u, "sm_clock", d.clock_info(Clock::SM));
    s.memory_clock_mhz = field(u, "memory_clock", d.clock_info(Clock::Memory));
    s.energy_j = field(u, "energy", d.total_energy_consumption()).map(|mj| mj as f64 / 1e3);
    s.throttle_reasons = field(u, "throttle_reasons", d.current_throttle_reasons())
        .map(|r| r.iter_names().map(|(n, _)| n.to_owned()).collect());
    s.processes = field(u, "processes", d.running_compute_processes()).map(|ps| {
        ps.into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                used_memory_bytes: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                },
            })
            .collect()
    });
    s
}
