//! One reading of every local GPU, and how the terminal shows it.

use std::collections::BTreeMap;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::report::document::gib;

/// A process using a GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// None where the driver does not say (e.g. under WDDM).
    pub used_memory_bytes: Option<u64>,
}

/// One GPU at one instant. A field is `None` when it could not be read; `unavailable` says why,
/// keyed by the field's name.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct GpuState {
    pub index: u32,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    /// Share of the last sample period the SMs were busy, %.
    pub sm_utilization_pct: Option<u32>,
    /// Share of the last sample period device memory was read or written, %.
    pub memory_utilization_pct: Option<u32>,
    pub power_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub temperature_c: Option<u32>,
    pub sm_clock_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    /// The total-energy counter since the driver loaded, joules.
    pub energy_j: Option<f64>,
    /// Why the clocks are held down now (NVML's names, e.g. `SW_POWER_CAP`).
    pub throttle_reasons: Option<Vec<String>>,
    pub processes: Option<Vec<GpuProcess>>,
    pub unavailable: BTreeMap<&'static str, String>,
}

/// Every local GPU at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuReport {
    /// RFC 3339, when the reading started.
    pub at: String,
    pub driver_version: Option<String>,
    /// `12.4`, the CUDA version the driver supports.
    pub cuda_version: Option<String>,
    pub gpus: Vec<GpuState>,
    /// Why the system-wide fields are missing.
    pub unavailable: BTreeMap<&'static str, String>,
}

fn or_dash<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

/// The report as a table, one row per GPU, then its processes and what could not be read.
pub fn table(r: &GpuReport) -> String {
    let mut out = vec![format!(
        "driver {}   CUDA {}   {}",
        r.driver_version.as_deref().unwrap_or("unknown"),
        r.cuda_version.as_deref().unwrap_or("unknown"),
        r.at
    )];
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "GPU",
        "name",
        "memory GiB",
        "SM %",
        "mem %",
        "power W",
        "temp °C",
        "SM/mem MHz",
        "energy kJ",
        "throttle",
    ]);
    for g in &r.gpus {
        t.add_row([
            g.index.to_string(),
            g.name.clone().unwrap_or_else(|| "-".into()),
            match (g.memory_used_bytes, g.memory_total_bytes) {
                (Some(u), Some(total)) => format!("{} / {}", gib(u), gib(total)),
                (u, total) => format!("{} / {}", or_dash(u, gib), or_dash(total, gib)),
            },
            or_dash(g.sm_utilization_pct, |v| v.to_string()),
            or_dash(g.memory_utilization_pct, |v| v.to_string()),
            format!(
                "{} / {}",
                or_dash(g.power_w, |v| format!("{v:.0}")),
                or_dash(g.power_limit_w, |v| format!("{v:.0}"))
            ),
            or_dash(g.temperature_c, |v| v.to_string()),
            format!(
                "{} / {}",
                or_dash(g.sm_clock_mhz, |v| v.to_string()),
                or_dash(g.memory_clock_mhz, |v| v.to_string())
            ),
            or_dash(g.energy_j, |v| format!("{:.1}", v / 1e3)),
            match &g.throttle_reasons {
                Some(r) if r.is_empty() => "none".to_owned(),
                Some(r) => r.join(", "),
                None => "-".to_owned(),
            },
        ]);
    }
    out.push(t.to_string());
    for g in &r.gpus {
        if let Some(ps) = &g.processes {
            for p in ps {
                out.push(format!(
                    "GPU {}: pid {} uses {} GiB",
                    g.index,
                    p.pid,
                    or_dash(p.used_memory_bytes, gib)
                ));
            }
        }
        for (field, why) in &g.unavailable {
            out.push(format!("GPU {}: {field} unavailable: {why}", g.index));
        }
    }
    for (field, why) in &r.unavailable {
        out.push(format!("{field} unavailable: {why}"));
    }
    out.join("\n")
}
