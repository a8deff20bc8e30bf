//! `gpu`: this machine's NVIDIA GPUs now, or every `--watch` interval.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::gpu;

#[derive(Debug, Args)]
pub struct GpuArgs {
    /// Read again every interval (e.g. 1s) until Ctrl-C or --count readings.
    #[arg(long, value_parser = crate::duration::parse_arg)]
    pub watch: Option<Duration>,
    /// With --watch, stop after this many readings.
    #[arg(long)]
    pub count: Option<u64>,
    /// `text`, or `json` (one object per reading, one per line with --watch).
    #[arg(long, default_value = "text")]
    pub format: String,
}

/// Exit code when NVML cannot be loaded (no driver, no library).
pub const EXIT_NO_NVML: u8 = 1;

pub fn run(args: GpuArgs) -> anyhow::Result<ExitCode> {
    let json = match args.format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            eprintln!("error: --format is text or json, not {other}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    if args.watch.is_some_and(|w| w.is_zero()) || args.count == Some(0) {
        eprintln!("error: --watch and --count must be above zero");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let nvml = match gpu::open() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(EXIT_NO_NVML));
        }
    };
    let readings = match args.watch {
        None => 1,
        Some(_) => args.count.unwrap_or(u64::MAX),
    };
    let interval = args.watch.unwrap_or_default();
    let mut next = std::time::Instant::now();
    for n in 0..readings {
        if n > 0 {
            next += interval;
            std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
        }
        let report = gpu::read(&nvml);
        if json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{}", gpu::table(&report));
        }
    }
    Ok(ExitCode::SUCCESS)
}
