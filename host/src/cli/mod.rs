//! The command line: one subcommand per job, each in its own file.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod compare;
pub mod delete;
pub mod demo;
pub mod export;
pub mod gpu;
pub mod history;
pub mod import;
pub mod info;
pub mod k8s;
pub mod merge;
pub mod plugin;
pub mod recommend;
pub mod recommend_remote;
pub mod run;
pub mod run_remote;
pub mod serve;
pub mod show;

/// Exit code for invalid usage (bad flags, bad configuration), as clap uses.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "llm-loadtest",
    version,
    about = "Load tests for LLM inference servers: TTFT, TPOT, ITL, throughput and goodput"
)]
pub struct Cli {
    /// Log filter, e.g. `info` or `llm_loadtest=debug` (also RUST_LOG).
    #[arg(long, global = true, env = "LLM_LOADTEST_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load-test a server: closed-loop concurrency levels or open-loop rates.
    Run(Box<run::RunArgs>),
    /// How many GPUs a peak concurrency needs at an SLO attainment target, found by measuring
    /// one replica.
    Recommend(Box<recommend::RecommendArgs>),
    /// What a server is and serves (version, models, context lengths), and this machine.
    Info(info::InfoArgs),
    /// This machine's NVIDIA GPUs (NVML): memory, utilisation, power, clocks, energy, processes.
    Gpu(gpu::GpuArgs),
    /// Run the built-in simulator and a short load test against it.
    Demo(demo::DemoArgs),
    /// Serve the built-in LLM server simulator.
    Sim(Box<llm_loadtest_sim::SimArgs>),
    /// Work with plugins: list, check, replay a recorded response, start a new adapter.
    Plugin(plugin::PluginArgs),
    /// Saved runs, newest first.
    History(history::HistoryArgs),
    /// One saved run's table.
    Show(show::ShowArgs),
    /// Saved runs side by side per level, with deltas and significance tests.
    Compare(compare::CompareArgs),
    /// Write a saved run as JSON, CSV, Markdown, HTML or vLLM JSON.
    Export(export::ExportArgs),
    /// Remove saved runs.
    Delete(delete::DeleteArgs),
    /// Save result files (ours, or vLLM bench serve JSON) in the store.
    Import(import::ImportArgs),
    /// One run from a sharded run's shard results (`run --shard I/N`).
    Merge(merge::MergeArgs),
    /// Serve the HTTP API a team shares: runs submitted and followed live, one history.
    Serve(Box<serve::ServeArgs>),
    /// Kubernetes manifests for more load than one machine sends (`k8s job`).
    K8s(k8s::K8sArgs),
}

/// Parse the command line and run the chosen subcommand.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 }));
        }
    };
    init_logging(&cli.log);
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Recommend(args) => recommend::run(*args),
        Command::Info(args) => info::run(args),
        Command::Gpu(args) => gpu::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Sim(args) => run_sim(*args),
        Command::Plugin(args) => plugin::run(args),
        Command::History(args) => history::run(args),
        Command::Show(args) => show::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Export(args) => export::run(args),
        Command::Delete(args) => delete::run(args),
        Command::Import(args) => import::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::K8s(args) => k8s::run(args),
    }
}

fn run_sim(args: llm_loadtest_sim::SimArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(llm_loadtest_sim::run_cli(args))?)
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only for a person at a terminal: a redirected log stays plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
