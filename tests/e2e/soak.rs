//! The CI slice of the soak (`cargo bench --bench soak` runs 30 minutes at 500 streams):
//! a few seconds at 50 streams with 5 % mixed faults, every request accounted for, no
//! descriptor left behind, the store read back whole.
use std::time::Duration;

use crate::soak_run::{Plan, soak};
use crate::store_support::BIN;

/// `LLM_LOADTEST_SOAK_STREAMS` / `_SECONDS` stretch the slice by hand (a debug-build soak).
fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn a_short_soak_accounts_for_every_request() {
    let data = tempfile::tempdir().unwrap();
    let streams = env("LLM_LOADTEST_SOAK_STREAMS", 50);
    let o = soak(&Plan {
        bin: BIN,
        streams: streams as u32,
        duration: Duration::from_secs(env("LLM_LOADTEST_SOAK_SECONDS", 6)),
        fault_rate: 0.05,
        sample_every: Duration::from_millis(200),
        data_dir: data.path(),
    });
    assert_eq!(o.exit, Some(0), "the run's stderr ends:\n{}", o.stderr_tail);
    let failed: u64 = o.failed_by_class.iter().map(|(_, n)| n).sum();
    assert!(o.requests > 100, "{o:?}");
    assert_eq!(o.requests, o.completed + failed, "{o:?}");
    assert!(failed > 0, "5 % faults drew none: {o:?}");
    // The simulator saw each measured request, and the pre-flight one.
    assert_eq!(o.server_received, o.requests + 1, "{o:?}");
    assert_eq!(
        (o.stored_records, o.stored_status.as_str()),
        (o.requests, "complete")
    );
    // Descriptors: one connection per stream at most, and nothing growing at the end.
    let peak = o.samples.iter().map(|s| s.fds).max().unwrap_or(0);
    assert!(
        peak as u64 <= streams + 64,
        "{peak} descriptors for {streams} streams"
    );
    // Memory: bounded, not measured here (a slope over seconds says nothing; the bench's
    // 30 minutes do).
    let peak_rss = o.samples.iter().map(|s| s.peak_kib).max().unwrap_or(0);
    assert!(peak_rss < 1 << 21, "{peak_rss} KiB for {streams} streams");
    let first = o.samples.first().map_or(0.0, |s| s.t_s);
    let fds: Vec<usize> = o.samples.iter().map(|s| s.fds).collect();
    eprintln!(
        "soak: {} requests = {} ok + {failed} failed {:?}, server received {}; {} samples from \
         t={first:.1} s, RSS peak {:.1} MiB, slope {:+.2} MiB/min over the second half; fds \
         start {} peak {peak} end {}",
        o.requests,
        o.completed,
        o.failed_by_class,
        o.server_received,
        o.samples.len(),
        peak_rss as f64 / 1024.0,
        o.rss_slope_mib_per_min(),
        fds.first().copied().unwrap_or(0),
        fds.last().copied().unwrap_or(0)
    );
}
