//! The `llm-loadtest sim` subcommand: serve until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use crate::capacity::{Slo, Workload, capacity};
use crate::config::{SimConfig, Timing};
use crate::duration::millis;
use crate::ramped::ramped_capacity;
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

    /// Print the batching model's predicted capacity (per-concurrency TTFT/TPOT) and exit.
    #[arg(long, help_heading = "Capacity")]
    pub print_capacity: bool,
    /// Objectives for --print-capacity: metric:duration pairs among ttft, tpot, e2el.
    #[arg(
        long,
        default_value = "ttft:500ms,tpot:50ms",
        help_heading = "Capacity"
    )]
    pub slo: String,
    /// Percentage of requests that must meet the SLO, for --print-capacity.
    #[arg(long, default_value_t = 95.0, help_heading = "Capacity")]
    pub attainment: f64,
    /// Prompt tokens per request, for --print-capacity.
    #[arg(long, default_value_t = 512, help_heading = "Capacity")]
    pub input_len: u32,
    /// Output tokens per request, for --print-capacity.
    #[arg(long, default_value_t = 128, help_heading = "Capacity")]
    pub output_len: u32,
    /// Instead of a server, break HTTP this way on every connection (see the simulator's
    /// README): for trying a client against broken responses by hand.
    #[arg(long, value_enum, help_heading = "Server behaviour")]
    pub hostile: Option<crate::hostile::Hostile>,
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

/// Connections a level opens at once wait in the accept queue; tokio's
/// default of 1,024 drops SYNs when 2,000 clients connect together, and each
/// drop costs the client a 1 s retransmit that would show up as TTFT. The
/// kernel caps this at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 8192;

async fn listen(bind: &str) -> std::io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host(bind).await?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    })?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Runs the `sim` subcommand: listens on `--bind`, prints the address, serves until Ctrl-C
/// (a second Ctrl-C stops without waiting for responses in flight).
pub async fn run_cli(args: SimArgs) -> Result<ExitCode, SimError> {
    if args.print_capacity {
        let mut out = std::io::stdout().lock();
        print_capacity(&args, &mut out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let timing = args.config.timing()?;
    let listener = listen(&args.bind).await.map_err(|source| SimError::Bind {
        addr: args.bind.clone(),
        source,
    })?;
    if let Some(kind) = args.hostile {
        let addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        println!("llm-loadtest sim (hostile: {kind:?}) listening on http://{addr}");
        let server = crate::hostile::serve(kind, listener);
        tokio::select! {
            () = server.wait() => {}
            stop = tokio::signal::ctrl_c() => stop.map_err(SimError::Signal)?,
        }
        return Ok(ExitCode::SUCCESS);
    }
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
        "stopping: {} requests received, {} completed, {} tokens generated, {} faults injected, \
         {} tokenize requests",
        stats.requests_received,
        stats.requests_completed,
        stats.tokens_generated,
        stats.faults_injected,
        stats.tokenize_requests
    );
    tokio::select! {
        stopped = handle.shutdown() => stopped?,
        second = tokio::signal::ctrl_c() => second.map_err(SimError::Signal)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the `--print-capacity` report for `args` to `out`.
pub fn print_capacity(args: &SimArgs, out: &mut dyn Write) -> Result<(), SimError> {
    let Timing::Batching(params) = args.config.timing()? else {
        return Err(SimError::Config(
            "--print-capacity needs the batching model: give --profile or the batching parameters"
                .into(),
        ));
    };
    if !(args.attainment > 0.0 && args.attainment <= 100.0) {
        return Err(SimError::Config(format!(
            "--attainment is a percentage in (0, 100], got {}",
            args.attainment
        )));
    }
    if args.output_len == 0 {
        return Err(SimError::Config("--output-len must be at least 1".into()));
    }
    let slo: Slo = args.slo.parse()?;
    let workload = Workload {
        input_len: args.input_len,
        output_len: args.output_len,
    };
    let q = args.attainment / 100.0;
    let cap = capacity(&params, workload, &slo, q);
    let pct = format!("p{}", args.attainment);
    let name = match (args.config.profile.as_deref(), args.config.time_scale) {
        (Some(p), Some(k)) => format!("{p} at time scale {k} (SLO thresholds are served time)"),
        (Some(p), None) => p.to_owned(),
        (None, _) => "explicit parameters".to_owned(),
    };
    let ms = |d: std::time::Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
    let mut text = String::new();
    text.push_str(&format!(
        "capacity of {name} for {} input / {} output tokens, SLO {} at {}% attainment\n",
        args.input_len, args.output_len, args.slo, args.attainment
    ));
    text.push_str(&format!(
        "model: step {} + {}·batch µs, prefill {} µs/token, max batch {}, KV {} tokens → {} slots\n",
        params.step_base_us,
        params.step_per_seq_us,
        params.prefill_us_per_token,
        params.max_batch,
        params.kv_tokens,
        cap.slots
    ));
    text.push_str(&format!(
        "max concurrency meeting the SLO: {} with evenly spread phases (closed form); {} with \
         the clients ramped over one cycle (the model run in virtual time)\n\n",
        cap.max_concurrency,
        ramped_capacity(&params, workload, &slo, q)
    ));
    text.push_str(&format!(
        "{:>11}  {:>12}  {:>12}  {:>11}  {:>9}  {:>11}  {:>6}  {}\n",
        "concurrency",
        format!("ttft {pct}"),
        format!("tpot {pct}"),
        "e2el ms",
        "req/s",
        "out tok/s",
        "queued",
        "meets"
    ));
    for p in &cap.table {
        text.push_str(&format!(
            "{:>11}  {:>12}  {:>12}  {:>11}  {:>9.2}  {:>11.0}  {:>6.1}  {}\n",
            p.concurrency,
            ms(p.ttft),
            p.tpot.map(ms).unwrap_or_else(|| "-".into()),
            ms(p.e2el),
            p.requests_per_s,
            p.output_tokens_per_s,
            p.queued,
            if p.meets(&slo) { "yes" } else { "no" }
        ));
    }
    text.push_str(
        "(times in ms; the model's steady state for closed-loop clients with evenly spread \
         phases: one admission per decode step, which a ramp in time approaches but fixed \
         lengths may never reach)\n",
    );
    out.write_all(text.as_bytes()).map_err(SimError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimArgs,
    }

    fn report(args: &[&str]) -> Result<String, SimError> {
        let cli = Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).unwrap();
        let mut out = Vec::new();
        print_capacity(&cli.args, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn prints_capacity_for_a_profile() {
        let text = report(&[
            "--print-capacity",
            "--profile",
            "h100-llama3-8b",
            "--slo",
            "ttft:500ms,tpot:50ms",
            "--attainment",
            "95",
            "--input-len",
            "512",
            "--output-len",
            "128",
        ])
        .unwrap();
        assert!(text.contains("max concurrency meeting the SLO: "), "{text}");
        assert!(text.contains("ttft p95"));
        let rows = text
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()));
        assert!(rows.count() >= 5, "{text}");
    }

    #[test]
    fn refuses_fixed_mode_and_bad_slo() {
        assert!(matches!(
            report(&["--print-capacity"]),
            Err(SimError::Config(_))
        ));
        assert!(matches!(
            report(&[
                "--print-capacity",
                "--profile",
                "l4-llama3-8b",
                "--slo",
                "ttft"
            ]),
            Err(SimError::Slo { .. })
        ));
    }
}
