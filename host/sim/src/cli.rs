//! The `llm-loadtest sim` subcommand: serve until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use crate::config::{SimConfig, Timing};
use crate::duration::millis;
use crate::{SimError, start};

/// Arguments of `llm-loadtest sim`; the host flattens this into its subcommand.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub bind: String,
    /// What the simulated server does.
    #[command(flatten)]
    pub config: SimConfig,
}

/// Describes the timing mode in one line.
fn describe(config: &SimConfig, timing: &Timing) -> String {
    match timing {
        Timing::Fixed { ttft, itl } => {
            format!(
                "fixed timing: ttft {} ms, itl {} ms",
                millis(*ttft),
                millis(*itl)
            )
        }
        Timing::Batching(p) => format!(
            "continuous batching{}: max batch {}, step {} + {}·batch µs, prefill {} µs/token, KV {} tokens",
            config
                .profile
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            p.max_batch,
            p.step_base_us,
            p.step_per_seq_us,
            p.prefill_us_per_token,
            p.kv_tokens
        ),
    }
}

/// Runs the `sim` subcommand: listens on `--bind`, prints the address, serves until Ctrl-C
/// (a second Ctrl-C stops without waiting for responses in flight).
pub async fn run_cli(args: SimArgs) -> Result<ExitCode, SimError> {
    let timing = args.config.timing()?;
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .map_err(|source| SimError::Bind {
            addr: args.bind.clone(),
            source,
        })?;
    let description = describe(&args.config, &timing);
    let handle = start(args.config, listener).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "llm-loadtest sim listening on http://{}",
            handle.local_addr()
        )
        .and_then(|_| writeln!(out, "{description}"))
        .and_then(|_| out.flush())
        .map_err(SimError::Output)?;
    }
    tokio::signal::ctrl_c().await.map_err(SimError::Signal)?;
    let stats = handle.stats();
    eprintln!(
        "stopping: {} requests received, {} completed, {} tokens generated, {} faults injected",
        stats.requests_received,
        stats.requests_completed,
        stats.tokens_generated,
        stats.faults_injected
    );
    tokio::select! {
        stopped = handle.shutdown() => stopped?,
        second = tokio::signal::ctrl_c() => second.map_err(SimError::Signal)?,
    }
    Ok(ExitCode::SUCCESS)
}
