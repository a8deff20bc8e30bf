//! Which GPU the answer names: `--gpu-type`, or what NVML reports on this machine when the
//! server is on it too (its URL's host is a loopback address), never a guess. A server at any
//! other address may run on any GPU, so without the flag the answer says "GPU" and why.

use crate::gpu::is_loopback;
use crate::info::host::GpuInfo;

/// The GPU type the answer names, and where it came from (or why there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuType {
    pub name: Option<String>,
    pub from: String,
}

/// The GPU type from the flag, or from `local` (NVML's GPUs on this machine, or why it has none)
/// when the server is at a loopback address.
pub fn decide(
    flag: Option<&str>,
    server: &str,
    local: impl FnOnce() -> Result<Vec<GpuInfo>, String>,
) -> GpuType {
    if let Some(name) = flag {
        return GpuType {
            name: Some(name.to_owned()),
            from: "--gpu-type".to_owned(),
        };
    }
    let none = |why: String| GpuType {
        name: None,
        from: format!("{why}: pass --gpu-type to name it"),
    };
    if !is_loopback(server) {
        return none("the server is not at a loopback address, so its GPU is unknown here".into());
    }
    let gpus = match local() {
        Ok(g) => g,
        Err(why) => return none(format!("the server is on this machine, but {why}")),
    };
    let mut names: Vec<&str> = gpus.iter().map(|g| g.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [] => none("the server is on this machine, but NVML lists no GPU".into()),
        [one] => GpuType {
            name: Some((*one).to_owned()),
            from: format!(
                "NVML on this machine ({} × {one}), where the server runs (a loopback address)",
                gpus.len()
            ),
        },
        many => none(format!(
            "this machine has GPUs of {} kinds ({}), and which the server uses is unknown",
            many.len(),
            many.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str) -> GpuInfo {
        GpuInfo {
            index: 0,
            name: name.into(),
            memory_bytes: 0,
            uuid: String::new(),
        }
    }

    #[test]
    fn named_by_the_flag_or_by_nvml_on_the_servers_machine_only() {
        let h100 = || {
            Ok(vec![
                gpu("NVIDIA H100 80GB HBM3"),
                gpu("NVIDIA H100 80GB HBM3"),
            ])
        };
        let flagged = decide(Some("H100"), "http://10.0.0.5", h100);
        assert_eq!(flagged.name.as_deref(), Some("H100"));
        let local = decide(None, "http://127.0.0.1:8000", h100);
        assert_eq!(local.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert!(local.from.contains("2 × NVIDIA H100"), "{}", local.from);
        let remote = decide(
            None,
            "http://10.0.0.5:8000",
            || -> Result<Vec<GpuInfo>, String> {
                panic!("NVML is not asked about a remote server")
            },
        );
        assert_eq!(remote.name, None);
        assert!(remote.from.contains("--gpu-type"), "{}", remote.from);
        let mixed = decide(None, "http://localhost:8000", || {
            Ok(vec![gpu("A"), gpu("B")])
        });
        assert_eq!(mixed.name, None);
        assert!(mixed.from.contains("2 kinds (A, B)"), "{}", mixed.from);
        let no_driver = decide(None, "http://localhost:8000", || {
            Err("NVML is not available".into())
        });
        assert_eq!(no_driver.name, None);
        assert!(
            no_driver.from.contains("NVML is not available"),
            "{}",
            no_driver.from
        );
        let none = decide(None, "http://localhost:8000", || Ok(vec![]));
        assert!(none.from.contains("NVML lists no GPU"), "{}", none.from);
    }
}
