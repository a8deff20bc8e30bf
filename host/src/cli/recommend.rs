//! `recommend`: how many GPUs a peak concurrency needs at an SLO attainment target, found by
//! measuring the one replica at `--server`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::run::RunArgs;
use crate::recommend::{self, Ask, SearchConfig};
use crate::store::{self, RunOrigin};

/// Exit code when no concurrency meets the target (C* = 0).
pub const EXIT_UNREACHABLE_TARGET: u8 = 3;

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Concurrent users to plan for.
    #[arg(long)]
    pub peak_concurrency: u32,
    /// Share of requests, in %, that must meet every --slo objective (failures count as
    /// missing them).
    #[arg(long, default_value_t = 95.0)]
    pub goodput_target: f64,
    /// GPUs one replica runs on (tensor/pipeline parallel size).
    #[arg(long, default_value_t = 1)]
    pub gpus_per_replica: u32,
    /// The GPU model, named in the answer (never guessed).
    #[arg(long)]
    pub gpu_type: Option<String>,
    /// Adds cost per hour and per million output tokens.
    #[arg(long)]
    pub cost_per_gpu_hour: Option<f64>,
    /// Time budget for all probes [default: 15m].
    #[arg(long, default_value = "15m")]
    pub max_duration: String,
    /// The largest concurrency probed [default: --peak-concurrency].
    #[arg(long)]
    pub max_probe_concurrency: Option<u32>,
    /// Write the recommendation as JSON here.
    #[arg(long = "recommendation-output")]
    pub recommendation_output: Option<PathBuf>,
    /// The workload, server and SLO flags of `run` (its --concurrency, --request-rate,
    /// --num-prompts and --duration are chosen by the search and refused here).
    #[command(flatten)]
    pub run: RunArgs,
}

fn usage(message: String) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(super::EXIT_USAGE))
}

pub fn run(args: RecommendArgs) -> anyhow::Result<ExitCode> {
    let run_args = match args.run.clone().merged() {
        Ok(a) => a,
        Err(e) => return usage(e.to_string()),
    };
    if !run_args.concurrency.is_empty()
        || !run_args.request_rate.is_empty()
        || run_args.num_prompts.is_some()
        || run_args.duration.is_some()
    {
        return usage(
            "recommend chooses each probe's concurrency and length: drop --concurrency, \
             --request-rate, --num-prompts and --duration"
                .into(),
        );
    }
    if run_args.slo.is_none() {
        return usage("recommend needs --slo (e.g. --slo ttft:500ms,tpot:50ms)".into());
    }
    if !(args.goodput_target > 0.0 && args.goodput_target < 100.0) {
        return usage(format!(
            "--goodput-target must be above 0 and below 100 (%), got {}",
            args.goodput_target
        ));
    }
    if args.peak_concurrency == 0 || args.gpus_per_replica == 0 {
        return usage("--peak-concurrency and --gpus-per-replica must be at least 1".into());
    }
    let budget = match crate::duration::parse(&args.max_duration) {
        Ok(d) => d,
        Err(e) => return usage(format!("--max-duration: {e}")),
    };
    let spec = match run_args.to_spec() {
        Ok(s) => s,
        Err(e) => return usage(e.to_string()),
    };
    let objectives = spec.slo.clone().unwrap_or_default();
    let cfg = SearchConfig {
        target: args.goodput_target / 100.0,
        max_concurrency: args
            .max_probe_concurrency
            .unwrap_or(args.peak_concurrency)
            .max(1),
        ..SearchConfig::default()
    };
    let ask = Ask {
        peak_concurrency: args.peak_concurrency,
        target: cfg.target,
        objectives,
        gpus_per_replica: args.gpus_per_replica,
        gpu_type: args.gpu_type.clone(),
        cost_per_gpu_hour: args.cost_per_gpu_hour,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(search_and_answer(&args, &run_args, spec, cfg, ask, budget))
}

async fn search_and_answer(
    args: &RecommendArgs,
    run_args: &RunArgs,
    spec: crate::runner::RunSpec,
    cfg: SearchConfig,
    ask: Ask,
    budget: Duration,
) -> anyhow::Result<ExitCode> {
    let runtime = super::run::plugin_runtime(run_args)?;
    let cancel = super::run::cancel_on_ctrl_c("answering from the probes measured so far");
    let verbose = !run_args.no_progress;
    let searched = recommend::probe::find(&spec, &cfg, &runtime, budget, cancel, |c, s| {
        if verbose {
            let attainment = s.goodput.as_ref().map_or(0.0, |g| g.attainment_pct);
            eprintln!(
                "probe c={c}: {} requests, {attainment:.1} % met the SLO, {:.0} output tok/s",
                s.requests, s.output_throughput
            );
        }
    })
    .await;
    if let Some(e) = &searched.error {
        eprintln!("error: {e}");
    }
    let Some(outcome) = searched.outcome else {
        if searched.error.is_some() {
            return Ok(ExitCode::from(1));
        }
        eprintln!(
            "error: no probe finished within --max-duration {}",
            args.max_duration
        );
        return Ok(ExitCode::from(1));
    };
    let rec = recommend::recommend(&ask, outcome, &searched.probes);
    // Every probe as a level of one saved run, with the recommendation.
    let saved = if run_args.no_save || searched.outputs.is_empty() {
        None
    } else {
        let mut outputs = searched.outputs.iter();
        let first = outputs.next().map(|o| o.result.clone());
        first.map(|mut result| {
            let mut records = vec![searched.outputs[0].records.concat()];
            for o in outputs {
                result.levels.extend(o.result.levels.iter().cloned());
                records.push(o.records.concat());
                result.finished_at.clone_from(&o.result.finished_at);
            }
            result.interrupted = searched.out_of_time || searched.error.is_some();
            result.recommendation = Some(rec.clone());
            (result, records)
        })
    };
    if let Some((result, records)) = saved {
        let dir = store::data_dir_or_default(run_args.data_dir.as_deref())?;
        let st = store::open(&dir)?;
        let id = store::save_result(&st, result, Some(records), RunOrigin::Measured)?;
        println!("probes saved as run {id}: llm-loadtest show {id}");
    }
    println!("{}", render(&rec, searched.out_of_time));
    if let Some(path) = &args.recommendation_output {
        let json = serde_json::to_string_pretty(&rec)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("recommendation written to {}", path.display());
    }
    Ok(if rec.replicas.is_none() {
        ExitCode::from(EXIT_UNREACHABLE_TARGET)
    } else if searched.error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The answer as text: the sentence, then the figures behind it.
pub fn render(r: &recommend::Recommendation, out_of_time: bool) -> String {
    let mut out = vec![r.sentence.clone()];
    let per = if r.at_least {
        format!("at least {}", r.per_replica)
    } else {
        r.per_replica.to_string()
    };
    out.push(format!("  per replica (C*)  {per}"));
    if let Some(hi) = r.first_failing {
        out.push(format!("  first failing     c={hi}"));
    }
    if let (Some(g), Some((lo, hi))) = (r.gpus, r.gpus_range) {
        out.push(format!("  GPUs              {g} (range {lo}–{hi})"));
    }
    if let Some(b) = &r.binding {
        out.push(format!("  binding           {b}"));
    }
    if let Some(t) = r.output_tokens_per_s_per_gpu {
        out.push(format!("  output tok/s/GPU  {t:.0} at C*"));
    }
    if let Some(c) = &r.cost {
        let per_m = c
            .per_million_output_tokens
            .map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
        out.push(format!(
            "  cost              {:.2}/hour, {per_m} per million output tokens",
            c.per_hour
        ));
    }
    out.push(format!("  probes            {}", r.probes.len()));
    out.push(format!("  assumes           {}", r.assumption));
    if out_of_time {
        out.push(
            "  the time budget ran out before the bracket was tight: raise --max-duration"
                .to_string(),
        );
    }
    out.join("\n")
}
