//! `recommend`: how many GPUs a peak concurrency needs at an SLO attainment target, found by
//! measuring the one replica at `--server`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::run::RunArgs;
use crate::plugin::{PluginError, RecommendGoal};
use crate::recommend::search::{self, Plan};
use crate::recommend::{self, Ask};
use crate::store::{self, RunOrigin};

/// Exit code when no concurrency meets the target (C* = 0).
pub const EXIT_UNREACHABLE_TARGET: u8 = 3;
/// Exit code when the recommendation policy failed (trapped, ran past its deadline, or asked for
/// what the host will not run).
pub const EXIT_POLICY_FAILED: u8 = 4;

/// Also the body of `POST /api/v1/recommend`, under these names in kebab-case with `run`'s
/// settings nested under `run`.
#[derive(Debug, Args, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RecommendArgs {
    /// Concurrent users to plan for.
    #[arg(long)]
    pub peak_concurrency: u32,
    /// Share of requests, in %, that must meet every --slo objective (failures count as
    /// missing them).
    #[arg(long, default_value_t = 95.0)]
    #[serde(default = "default_target")]
    pub goodput_target: f64,
    /// GPUs one replica runs on (tensor/pipeline parallel size).
    #[arg(long, default_value_t = 1)]
    #[serde(default = "one")]
    pub gpus_per_replica: u32,
    /// The GPU model, named in the answer. Without it, the name NVML gives when the server is
    /// on this machine (a loopback --server), else none: never guessed.
    #[arg(long)]
    pub gpu_type: Option<String>,
    /// Adds cost per hour and per million output tokens.
    #[arg(long)]
    pub cost_per_gpu_hour: Option<f64>,
    /// Time budget for all probes [default: 15m; through `serve`, at most its run-time limit].
    #[arg(long)]
    pub max_duration: Option<String>,
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
    #[serde(default)]
    pub policy_options: Vec<String>,
    /// Write the recommendation as JSON here.
    #[arg(long = "recommendation-output")]
    #[serde(skip)]
    pub recommendation_output: Option<PathBuf>,
    /// The workload, server and SLO flags of `run` (its --concurrency, --request-rate,
    /// --num-prompts and --duration are chosen by the search and refused here).
    #[command(flatten)]
    #[serde(default)]
    pub run: RunArgs,
}

fn default_target() -> f64 {
    95.0
}

fn one() -> u32 {
    1
}

/// The time budget when none is given.
pub const DEFAULT_BUDGET: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn usage(message: String) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(super::EXIT_USAGE))
}

impl RecommendArgs {
    /// The search these settings ask for, checked as the command line checks them; the
    /// message names the setting that is wrong.
    pub fn plan(&self) -> Result<(Plan, RunArgs), String> {
        let run_args = self.run.clone().merged().map_err(|e| e.to_string())?;
        if !run_args.concurrency.is_empty()
            || !run_args.request_rate.is_empty()
            || run_args.num_prompts.is_some()
            || run_args.duration.is_some()
        {
            return Err(
                "recommend chooses each probe's concurrency and length: drop --concurrency, \
                 --request-rate, --num-prompts and --duration"
                    .into(),
            );
        }
        if run_args.slo.is_none() {
            return Err("recommend needs --slo (e.g. --slo ttft:500ms,tpot:50ms)".into());
        }
        if !(self.goodput_target > 0.0 && self.goodput_target < 100.0) {
            return Err(format!(
                "--goodput-target must be above 0 and below 100 (%), got {}",
                self.goodput_target
            ));
        }
        if self.peak_concurrency == 0 || self.gpus_per_replica == 0 {
            return Err("--peak-concurrency and --gpus-per-replica must be at least 1".into());
        }
        let budget = match &self.max_duration {
            Some(d) => crate::duration::parse(d).map_err(|e| format!("--max-duration: {e}"))?,
            None => DEFAULT_BUDGET,
        };
        let spec = run_args.to_spec().map_err(|e| e.to_string())?;
        let objectives = spec.slo.clone().unwrap_or_default();
        let mut options = Vec::new();
        for o in &self.policy_options {
            match o.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    options.push((k.trim().to_owned(), v.trim().to_owned()));
                }
                _ => return Err(format!("--policy-option {o:?}: expected KEY=VALUE")),
            }
        }
        let goal = RecommendGoal {
            target: self.goodput_target / 100.0,
            max_concurrency: self
                .max_probe_concurrency
                .unwrap_or(self.peak_concurrency)
                .max(1),
            peak_concurrency: self.peak_concurrency,
            options,
        };
        let gpu = recommend::gpu_type::decide(
            self.gpu_type.as_deref(),
            &spec.server,
            crate::info::host::local_gpus,
        );
        let ask = Ask {
            peak_concurrency: self.peak_concurrency,
            target: goal.target,
            objectives,
            gpus_per_replica: self.gpus_per_replica,
            gpu_type: gpu.name,
            gpu_type_from: Some(gpu.from),
            cost_per_gpu_hour: self.cost_per_gpu_hour,
        };
        let plan = Plan {
            spec,
            goal,
            ask,
            budget,
            policy: self.policy.clone().unwrap_or_else(|| "recommend".into()),
        };
        Ok((plan, run_args))
    }
}

pub fn run(args: RecommendArgs) -> anyhow::Result<ExitCode> {
    let (plan, run_args) = match args.plan() {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    if let Some(remote) = crate::remote::chosen(run_args.remote.as_deref())? {
        // The settings as merged with a --config file are what the server gets.
        let args = RecommendArgs {
            run: run_args,
            ..args
        };
        return super::recommend_remote::run(args, remote);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(search_and_answer(&args, &run_args, plan))
}

async fn search_and_answer(
    args: &RecommendArgs,
    run_args: &RunArgs,
    plan: Plan,
) -> anyhow::Result<ExitCode> {
    let plan_budget = plan.budget;
    let runtime = super::run::plugin_runtime(run_args)?;
    let cancel = super::run::cancel_on_ctrl_c("answering from the probes measured so far");
    let verbose = !run_args.no_progress;
    let (events, _) = tokio::sync::broadcast::channel(16);
    let on_probe = |c, s: &crate::metrics::LevelSummary| {
        if verbose {
            let attainment = s.goodput.as_ref().map_or(0.0, |g| g.attainment_pct);
            eprintln!(
                "probe c={c}: {} requests, {attainment:.1} % met the SLO, {:.0} output tok/s",
                s.requests, s.output_throughput
            );
        }
    };
    let answered = match search::search(&plan, &runtime, cancel, &events, on_probe).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: --policy: {e}");
            return Ok(ExitCode::from(EXIT_POLICY_FAILED));
        }
    };
    let searched = &answered.searched;
    let failures = answered.failures();
    for e in &failures {
        eprintln!("error: {e}");
    }
    let failed_code = match &searched.policy_error {
        // The policy refused the goal before any probe: the flags are what is wrong.
        Some(PluginError::Guest { .. }) if searched.probes.is_empty() => super::EXIT_USAGE,
        Some(_) => EXIT_POLICY_FAILED,
        None => 1,
    };
    if !run_args.no_save
        && let Some((result, records)) = answered.merged_run()
    {
        let dir = store::data_dir_or_default(run_args.data_dir.as_deref())?;
        let st = store::open(&dir)?;
        let id = store::save_result(&st, result, Some(records), RunOrigin::Measured)?;
        println!("probes saved as run {id}: llm-loadtest show {id}");
    }
    let Some(rec) = &answered.recommendation else {
        if failures.is_empty() {
            eprintln!(
                "error: no probe was decided within --max-duration {}",
                humantime::format_duration(plan_budget)
            );
        }
        return Ok(ExitCode::from(failed_code));
    };
    println!("{}", render(rec, searched.out_of_time));
    if verbose {
        println!("{}", crate::report::capacity::bars(rec));
    }
    if let Some(path) = &args.recommendation_output {
        let json = serde_json::to_string_pretty(rec)?;
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
