//! This machine: OS, CPUs, memory, and the NVIDIA GPUs NVML reports (none when no driver is
//! loaded: said so, never guessed).

use serde::Serialize;

/// One local GPU as NVML names it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub memory_bytes: u64,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HostInfo {
    pub os: String,
    pub arch: String,
    pub cpus: Option<usize>,
    pub memory_bytes: Option<u64>,
    pub gpus: Vec<GpuInfo>,
    pub driver_version: Option<String>,
    /// Why no GPU is listed, when none is.
    pub gpu_note: Option<String>,
}

/// `MemTotal` from a `/proc/meminfo` text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The GPUs NVML lists on this machine, or why it cannot say.
pub fn local_gpus() -> Result<Vec<GpuInfo>, String> {
    gpus().map(|(g, _)| g)
}

fn gpus() -> Result<(Vec<GpuInfo>, String), String> {
    let nvml = crate::gpu::open().map_err(|e| e.to_string())?;
    let report = crate::gpu::read(&nvml);
    if let Some(why) = report.unavailable.get("gpus") {
        return Err(format!("NVML: device count: {why}"));
    }
    let gpus = report
        .gpus
        .into_iter()
        .map(|g| GpuInfo {
            index: g.index,
            name: g.name.unwrap_or_else(|| "unknown".to_owned()),
            memory_bytes: g.memory_total_bytes.unwrap_or(0),
            uuid: g.uuid.unwrap_or_default(),
        })
        .collect();
    Ok((gpus, report.driver_version.unwrap_or_default()))
}

pub fn gather() -> HostInfo {
    let (gpus, driver_version, gpu_note) = match gpus() {
        Ok((g, _)) if g.is_empty() => (g, None, Some("NVML lists no GPU".to_owned())),
        Ok((g, driver)) => (g, Some(driver), None),
        Err(note) => (Vec::new(), None, Some(note)),
    };
    HostInfo {
        os: std::env::consts::OS.to_owned(),
        arch: std::env::consts::ARCH.to_owned(),
        cpus: std::thread::available_parallelism().ok().map(|n| n.get()),
        memory_bytes: std::fs::read_to_string("/proc/meminfo")
            .ok()
            .as_deref()
            .and_then(mem_total),
        gpus,
        driver_version,
        gpu_note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total() {
        let text = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(text), Some(24_576_000 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB"), None);
    }

    #[test]
    fn gathers_without_panicking_with_or_without_a_gpu() {
        let h = gather();
        assert!(!h.os.is_empty());
        // Either GPUs with a driver, or a note saying why there are none.
        assert!(!h.gpus.is_empty() || h.gpu_note.is_some());
    }
}
