//! Command-line interface.
use std::process::ExitCode;

pub fn run() -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
