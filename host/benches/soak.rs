//! Soak: `cargo bench --bench soak -- --minutes 30 --streams 500` (the defaults). The
//! simulator (50 ms TTFT, 20 ms ITL) with 5 % mixed faults and a `run` as separate processes;
//! prints the run's resident memory over time and its slope over the second half, open
//! descriptors at start, peak and end, every request accounted for (sent = ok + failed by
//! class, and what the simulator received), and the store read back.
use std::time::Duration;

#[path = "../../tests/e2e/soak_run.rs"]
mod soak_run;

#[path = "shared/args.rs"]
mod bench_args;

fn main() {
    let minutes = bench_args::number("--minutes", 30);
    let streams = bench_args::number("--streams", 500) as u32;
    let data = tempfile::tempdir().expect("a data directory");
    println!("soak: {streams} streams for {minutes} min, 5 % mixed faults");
    let o = soak_run::soak(&soak_run::Plan {
        bin: env!("CARGO_BIN_EXE_llm-loadtest"),
        streams,
        duration: Duration::from_secs(minutes * 60),
        fault_rate: 0.05,
        sample_every: Duration::from_secs(5),
        data_dir: data.path(),
    });
    let every = (o.samples.len() / 12).max(1);
    for s in o.samples.iter().step_by(every) {
        println!(
            "  t={:>6.0} s  RSS {:>8.1} MiB  fds {}",
            s.t_s,
            s.rss_kib as f64 / 1024.0,
            s.fds
        );
    }
    println!(
        "peak RSS {:.1} MiB (VmHWM at the last sample)",
        o.samples.last().map_or(0, |s| s.peak_kib) as f64 / 1024.0
    );
    let fds: Vec<usize> = o.samples.iter().map(|s| s.fds).collect();
    println!(
        "RSS slope over the second half: {:+.3} MiB/min; fds start {} peak {} end {}",
        o.rss_slope_mib_per_min(),
        fds.first().copied().unwrap_or(0),
        fds.iter().max().copied().unwrap_or(0),
        fds.last().copied().unwrap_or(0)
    );
    // Each request's record stays in memory until its level ends (exact percentiles need
    // every value), so the run grows by about one record per request: the slope per request
    // is that record's size, and anything far above it would be a leak.
    let per_minute = o.requests as f64 / minutes.max(1) as f64;
    if per_minute > 0.0 {
        println!(
            "RSS growth per request: {:.0} bytes ({:.0} requests a minute)",
            o.rss_slope_mib_per_min() * 1024.0 * 1024.0 / per_minute,
            per_minute
        );
    }
    let failed: u64 = o.failed_by_class.iter().map(|(_, n)| n).sum();
    println!(
        "requests {} = ok {} + failed {} {:?}: {}; the simulator received {} (pre-flight \
         included): {}",
        o.requests,
        o.completed,
        failed,
        o.failed_by_class,
        if o.requests == o.completed + failed {
            "accounted"
        } else {
            "NOT ACCOUNTED"
        },
        o.server_received,
        if o.server_received == o.requests + 1 {
            "matches"
        } else {
            "DIFFERS"
        }
    );
    println!(
        "store: {} records, status {} (exit {:?})",
        o.stored_records, o.stored_status, o.exit
    );
    if o.exit != Some(0) {
        println!("the run's stderr ends:\n{}", o.stderr_tail);
    }
}
