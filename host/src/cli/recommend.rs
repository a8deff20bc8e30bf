//! `recommend`: how many GPUs a peak concurrency needs at an SLO attainment target, found by
//! measuring the one replica at `--server`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::run::RunArgs;
use crate::plugin::{PluginError, RecommendGoal};
use crate::recommend::{self, Ask};
use crate::store::{self, RunOrigin};

/// Exit code when no concurrency meets the target (C* = 0).
pub const EXIT_UNREACHABLE_TARGET: u8 = 3;
/// Exit code when the recommendation policy failed (trapped, ran past its deadline, or asked for
/// what the host will not run).
pub const EXIT_POLICY_FAILED: u8 = 4;

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
    /// The GPU model, named in the answer. Without it, the name NVML gives when the server is
    /// on this machine (a loopback --server), else none: never guessed.
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
    /// The recommendation policy that picks each probe and decides C*: embedded `recommend` or a
    /// .wasm component exporting llm-loadtest:plugin/recommend-policy [default: recommend].
    #[arg(long)]
    pub policy: Option<String>,
    /// A setting for the policy, KEY=VALUE, repeatable. The default policy takes min-requests,
    /// max-requests, tolerance and z (see the README).
    #[arg(long = "policy-option", value_name = "KEY=VALUE")]
    pub policy_options: Vec<String>,
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
    if let Some(url) = &run_args.remote {
        eprintln!(
            "note: recommend runs its probes from this machine; --remote / LLM_LOADTEST_REMOTE \
             ({url}) is not used"
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
    let mut options = Vec::new();
    for o in &args.policy_options {
        match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                options.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            _ => return usage(format!("--policy-option {o:?}: expected KEY=VALUE")),
        }
    }
    let goal = RecommendGoal {
        target: args.goodput_target / 100.0,
        max_concurrency: args
            .max_probe_concurrency
            .unwrap_or(args.peak_concurrency)
            .max(1),
        peak_concurrency: args.peak_concurrency,
        options,
    };
    let gpu = recommend::gpu_type::decide(
        args.gpu_type.as_deref(),
        &spec.server,
        crate::info::host::local_gpus,
    );
    let ask = Ask {
        peak_concurrency: args.peak_concurrency,
        target: goal.target,
        objectives,
        gpus_per_replica: args.gpus_per_replica,
        gpu_type: gpu.name,
        gpu_type_from: Some(gpu.from),
        cost_per_gpu_hour: args.cost_per_gpu_hour,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(search_and_answer(&args, &run_args, spec, goal, ask, budget))
}

async fn search_and_answer(
    args: &RecommendArgs,
    run_args: &RunArgs,
    spec: crate::runner::RunSpec,
    goal: RecommendGoal,
    ask: Ask,
    budget: Duration,
) -> anyhow::Result<ExitCode> {
    let runtime = super::run::plugin_runtime(run_args)?;
    let policy_spec = args.policy.as_deref().unwrap_or("recommend");
    let policy = match runtime.load_recommend_policy(policy_spec) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: --policy: {e}");
            return Ok(ExitCode::from(EXIT_POLICY_FAILED));
        }
    };
    let cancel = super::run::cancel_on_ctrl_c("answering from the probes measured so far");
    let verbose = !run_args.no_progress;
    let searched =
        recommend::probe::find(&spec, &policy, &goal, &runtime, budget, cancel, |c, s| {
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
    match &searched.policy_error {
        Some(e @ PluginError::Guest { .. }) if searched.probes.is_empty() => {
            eprintln!("error: the recommendation policy refused this search: {e}");
        }
        Some(e) => eprintln!("error: the recommendation policy failed: {e}"),
        None => {}
    }
    if let Some(why) = &searched.dead_server {
        eprintln!("error: the server answered no request: {why}");
    }
    let identity = policy.identity();
    let policy_name = format!(
        "{} {} ({}, sha256 {})",
        identity.name,
        identity.version,
        identity.source,
        &identity.sha256[..12.min(identity.sha256.len())]
    );
    let rec = searched.outcome.map(|outcome| {
        // What the server and GPUs said during the last probe at the first failing concurrency.
        let first_failing = match outcome {
            recommend::Outcome::Found { hi, .. } => Some(hi),
            recommend::Outcome::None => Some(1),
            recommend::Outcome::AtLeast(_) => None,
        };
        let at = |l: &&crate::result::LevelResult, c: u32| {
            matches!(l.load, crate::engine::Load::Concurrency { concurrency } if concurrency == c)
        };
        let resource = first_failing.and_then(|c| {
            let level = searched
                .outputs
                .iter()
                .flat_map(|o| o.result.levels.iter())
                .rfind(|l| at(l, c))?;
            crate::telemetry::binding::resource(level.gpu.as_ref(), level.server.as_ref())
        });
        let mut rec = recommend::recommend(&ask, outcome, &searched.probes)
            .with_binding_resource(resource);
        rec.policy = Some(policy_name.clone());
        rec
    });
    let failed_code = match &searched.policy_error {
        // The policy refused the goal before any probe: the flags are what is wrong.
        Some(PluginError::Guest { .. }) if searched.probes.is_empty() => super::EXIT_USAGE,
        Some(_) => EXIT_POLICY_FAILED,
        None => 1,
    };
    // Every probe as a level of one saved run, with the recommendation when there is one: a
    // search that failed still keeps what it measured.
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
            result.interrupted = searched.out_of_time
                || searched.error.is_some()
                || searched.policy_error.is_some()
                || searched.dead_server.is_some();
            result.recommendation.clone_from(&rec);
            // Each probe sampled the GPUs on its own clock: the per-level figures stay, the
            // raw samples of the first probe alone would not match the merged levels.
            result.gpu = None;
            (result, records)
        })
    };
    if let Some((result, records)) = saved {
        let dir = store::data_dir_or_default(run_args.data_dir.as_deref())?;
        let st = store::open(&dir)?;
        let id = store::save_result(&st, result, Some(records), RunOrigin::Measured)?;
        println!("probes saved as run {id}: llm-loadtest show {id}");
    }
    let Some(rec) = rec else {
        if searched.error.is_none()
            && searched.policy_error.is_none()
            && searched.dead_server.is_none()
        {
            eprintln!(
                "error: no probe was decided within --max-duration {}",
                args.max_duration
            );
        }
        return Ok(ExitCode::from(failed_code));
    };
    println!("{}", render(&rec, searched.out_of_time));
    if verbose {
        println!("{}", crate::report::capacity::bars(&rec));
    }
    if let Some(path) = &args.recommendation_output {
        let json = serde_json::to_string_pretty(&rec)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("recommendation written to {}", path.display());
    }
    Ok(
        if searched.error.is_some() || searched.policy_error.is_some() {
            ExitCode::from(failed_code)
        } else if rec.replicas.is_none() {
            ExitCode::from(EXIT_UNREACHABLE_TARGET)
        } else {
            ExitCode::SUCCESS
        },
    )
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
    if let Some(res) = &r.binding_resource {
        out.push(format!("  readings at it    {res}"));
    }
    if let Some(from) = &r.gpu_type_from {
        out.push(format!("  GPU type from     {from}"));
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
    if let Some(p) = &r.policy {
        out.push(format!("  policy            {p}"));
    }
    out.push(format!("  assumes           {}", r.assumption));
    if out_of_time {
        out.push(
            "  the time budget ran out before the bracket was tight: raise --max-duration"
                .to_string(),
        );
    }
    out.join("\n")
}
