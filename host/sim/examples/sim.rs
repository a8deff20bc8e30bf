//! The simulator on its own, until the host's `llm-loadtest sim` subcommand wires it in:
//! `cargo run -p llm-loadtest-sim --example sim -- --bind 127.0.0.1:8000 --profile h100-llama3-8b`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "sim",
    about = "A multi-protocol LLM inference server simulator"
)]
struct Cli {
    #[command(flatten)]
    args: llm_loadtest_sim::SimArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    match llm_loadtest_sim::run_cli(Cli::parse().args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
