//! One `run`, end to end: load the adapter, the prompts and the SLO policy,
//! drive the engine level by level, then settle token counts, judge SLOs and
//! summarise. The CLI, `demo` and (later) the API server all call this.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::dataset::{self, DatasetSpec, Endpoint};
use crate::engine::{
    self, LevelRun, PreparedRequest, ProgressEvent, RecordSink, RunContext, Target,
};
use crate::metrics::histogram::LevelHistograms;
use crate::metrics::{Judged, LevelSummary, Objective, RequestRecord};
use crate::plan::{LevelPlan, Shard, StartSchedule};
use crate::plugin::{self, GenerationRequest, Prompt, Runtime};
use crate::request_shape;
use crate::result::{LevelResult, PluginRef, RunResult, RunSettings, SCHEMA_VERSION, ToolInfo};
use crate::telemetry::beside::Beside;
use crate::tokenize::{Tokenizer, TokenizerChoice};

/// A validated run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub server: String,
    /// None: ask the server's `/v1/models`.
    pub model: Option<String>,
    pub adapter: String,
    pub endpoint: Endpoint,
    pub levels: Vec<LevelPlan>,
    pub dataset: DatasetSpec,
    pub dataset_label: String,
    /// Who counts prompt tokens (`auto`: the server when it can).
    pub tokenizer: TokenizerChoice,
    pub seed: u64,
    pub headers: Vec<(String, String)>,
    pub api_key: Option<String>,
    pub max_tokens: Option<u32>,
    pub min_tokens: Option<u32>,
    pub ignore_eos: bool,
    pub temperature: Option<f32>,
    pub extra_body: Option<String>,
    pub stream: bool,
    /// Which streamed chunks are token arrivals.
    pub metric_mode: crate::metrics::MetricMode,
    pub timeout: Duration,
    pub slo: Option<Vec<Objective>>,
    pub slo_policy: String,
    pub save_requests: bool,
    pub tags: Vec<String>,
    /// Run even when the adapter does not declare a capability a flag needs (`--ignore-eos`
    /// through an adapter that cannot send it); the result records what was sent.
    pub allow_unsupported: bool,
    /// Ask the server its version before the run (a GET at each of a few well-known paths).
    pub probe_server_version: bool,
    /// Closed-loop clients start spread over this time.
    pub ramp: Duration,
    /// GPUs and server metrics read beside the levels.
    pub telemetry: crate::telemetry::beside::Plan,
    /// How `https://` servers' certificates are checked.
    pub tls: engine::tls::TlsOptions,
    /// Send one request before the first level and stop on its failure
    /// ([`engine::preflight`]). The CLI's default; off in [`RunSpec::new`] so that library
    /// callers count exactly the requests they schedule.
    pub preflight: bool,
    /// Time response bytes by the kernel's receive timestamps where the platform gives them
    /// (see [`engine::h1::socket`]); off: the clock read after each read.
    pub kernel_timestamps: bool,
    /// Which share of each level this process runs (`run --shard`).
    pub shard: Shard,
    /// When each level starts on the wall clock (`--start-at`, `--level-interval`).
    pub start: Option<StartSchedule>,
}

impl RunSpec {
    /// One closed-loop level of 100 requests at concurrency 1 against
    /// `server`, synthetic 512 → 128-token prompts, streaming: the CLI's
    /// defaults. Adjust the fields for anything else.
    pub fn new(server: impl Into<String>, adapter: impl Into<String>) -> RunSpec {
        RunSpec {
            server: server.into(),
            model: None,
            adapter: adapter.into(),
            endpoint: Endpoint::Completions,
            levels: vec![LevelPlan {
                load: crate::plan::Load::Concurrency { concurrency: 1 },
                bound: crate::plan::Bound::Requests(100),
                warmup: crate::plan::Warmup::None,
                seed: 0,
            }],
            dataset: DatasetSpec::Synthetic {
                input_len: 512,
                output_len: 128,
                range_ratio: 0.0,
                prefix_len: 0,
            },
            dataset_label: "synthetic input=512 output=128".to_string(),
            tokenizer: TokenizerChoice::Auto,
            seed: 0,
            headers: Vec::new(),
            api_key: None,
            max_tokens: None,
            min_tokens: None,
            ignore_eos: false,
            temperature: None,
            extra_body: None,
            stream: true,
            metric_mode: crate::metrics::MetricMode::default(),
            timeout: Duration::from_secs(600),
            slo: None,
            slo_policy: "slo".to_string(),
            save_requests: false,
            tags: Vec::new(),
            allow_unsupported: false,
            probe_server_version: true,
            ramp: Duration::ZERO,
            telemetry: crate::telemetry::beside::Plan::default(),
            preflight: false,
            tls: engine::tls::TlsOptions::default(),
            kernel_timestamps: true,
            shard: Shard::WHOLE,
            start: None,
        }
    }

    /// The request every prompt becomes: the flags' shaping around `prompt`.
    pub fn generation_request(
        &self,
        model: &str,
        prompt: Prompt,
        max_tokens: u32,
    ) -> GenerationRequest {
        GenerationRequest {
            model: model.to_string(),
            prompt,
            max_tokens: self.max_tokens.unwrap_or(max_tokens),
            min_tokens: self.min_tokens,
            ignore_eos: self.ignore_eos,
            temperature: self.temperature,
            stream: self.stream,
            extra_body: self.extra_body.clone(),
        }
    }

    /// A request shaped as the run's will be, for checks made before the prompts exist.
    pub fn probe_request(&self) -> GenerationRequest {
        let prompt = match self.endpoint {
            Endpoint::Completions => Prompt::Text(String::new()),
            Endpoint::Chat => Prompt::Chat(Vec::new()),
        };
        self.generation_request("", prompt, 1)
    }

    /// The settings recorded with the result: header names only, never
    /// their values, and whether (not which) API key was set.
    pub fn settings(&self, model: String) -> RunSettings {
        let mut header_names: Vec<String> = self.headers.iter().map(|(k, _)| k.clone()).collect();
        header_names.sort();
        header_names.dedup();
        RunSettings {
            server: self.server.clone(),
            model,
            endpoint: match self.endpoint {
                Endpoint::Completions => "completions".to_string(),
                Endpoint::Chat => "chat".to_string(),
            },
            dataset: self.dataset_label.clone(),
            tokenizer: self.tokenizer.to_string(),
            stream: self.stream,
            metric_mode: self.metric_mode,
            max_tokens: self.max_tokens,
            min_tokens: self.min_tokens,
            ignore_eos: self.ignore_eos,
            temperature: self.temperature,
            timeout_s: self.timeout.as_secs_f64(),
            seed: self.seed,
            header_names,
            api_key_set: self.api_key.is_some(),
            tags: self.tags.clone(),
            unsupported: Vec::new(),
            served_model: None,
            server_version: None,
            tls: self
                .server
                .starts_with("https://")
                .then(|| self.tls.describe()),
            arrival_times: None,
            ramp_up_s: (!self.ramp.is_zero()).then_some(self.ramp.as_secs_f64()),
            shard: self
                .shard
                .is_sharded()
                .then(|| crate::result::ShardSettings {
                    index: self.shard.index,
                    count: self.shard.count,
                    start_at: self.start.map(|s| crate::result::rfc3339_micros(s.at)),
                    level_interval_s: self.start.and_then(|s| s.interval).map(|d| d.as_secs_f64()),
                }),
            slo: self
                .slo
                .as_ref()
                .map(|objectives| crate::result::SloSettings {
                    objectives: objectives.clone(),
                    policy: self.slo_policy.clone(),
                }),
        }
    }
}

/// What a run produced: the result, plus every level's records for writers
/// that need them (vLLM's format lists per-request values). Shared, not copied: the store
/// writes them from another thread while the writers read them.
#[derive(Debug)]
pub struct RunOutput {
    pub result: RunResult,
    pub records: Arc<Vec<Vec<RequestRecord>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Plugin(#[from] plugin::PluginError),
    #[error(transparent)]
    Dataset(#[from] dataset::DatasetError),
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenize::TokenizeError),
    #[error(transparent)]
    TokenizerChoice(#[from] crate::tokenize::ResolveError),
    #[error(transparent)]
    Client(#[from] engine::ClientError),
    #[error("no model given and {0}; pass --model")]
    ModelDiscovery(String),
    #[error("SLO policy `{policy}` rejected the objectives: {reason}")]
    Objectives { policy: String, reason: String },
    /// A flag asks for something the adapter cannot send.
    #[error("{0}")]
    Unsupported(String),
    /// Not a source: its message is already in this one.
    #[error("{0} (pass --no-preflight to run anyway)")]
    Preflight(engine::preflight::PreflightError),
}

/// Prompts needed when a level is bounded by time: the dataset cycles.
const PROMPTS_FOR_TIMED_LEVELS: usize = 1000;

fn prompts_needed(levels: &[LevelPlan]) -> usize {
    levels
        .iter()
        .map(|p| {
            let warm = match p.warmup {
                crate::plan::Warmup::Requests(n) => n as usize,
                _ => 0,
            };
            match p.bound {
                crate::plan::Bound::Requests(n) => n as usize + warm,
                crate::plan::Bound::Seconds(_) => PROMPTS_FOR_TIMED_LEVELS,
            }
        })
        .max()
        .unwrap_or(1)
        .max(1)
}

fn plugin_ref(id: &plugin::PluginIdentity) -> PluginRef {
    PluginRef {
        name: id.name.clone(),
        version: id.version.clone(),
        wit_version: id.wit_version.clone(),
        sha256: id.sha256.clone(),
        source: id.source.clone(),
    }
}

/// Run every level of `spec`. Per-request failures are measured, not
/// returned; an error here means the run could not start.
pub async fn execute(
    spec: &RunSpec,
    runtime: &Runtime,
    events: broadcast::Sender<ProgressEvent>,
    cancel: CancellationToken,
) -> Result<RunOutput, RunError> {
    execute_with_sink(spec, runtime, events, cancel, None).await
}

/// [`execute`], also sending each record to `sink` as it completes (the
/// store saves them while the run goes, so a killed run keeps them).
pub async fn execute_with_sink(
    spec: &RunSpec,
    runtime: &Runtime,
    events: broadcast::Sender<ProgressEvent>,
    cancel: CancellationToken,
    sink: Option<RecordSink>,
) -> Result<RunOutput, RunError> {
    let started_at = crate::result::now_rfc3339();
    let adapter = runtime.load_adapter(&spec.adapter)?;
    let unsent = {
        let missing = request_shape::unsupported(adapter.info(), &spec.probe_request());
        if !missing.is_empty() && !spec.allow_unsupported {
            return Err(RunError::Unsupported(request_shape::refusal(
                &spec.adapter,
                &missing,
                runtime,
            )));
        }
        for u in &missing {
            tracing::warn!(
                adapter = %spec.adapter,
                "{} asked, but the adapter does not declare `{}`: running without it",
                u.flag,
                u.capability
            );
        }
        missing
    };
    let slo = match &spec.slo {
        Some(objectives) => {
            crate::metrics::check_measurable(objectives, spec.stream)
                .map_err(|e| RunError::Unsupported(format!("--slo {e}")))?;
            let policy = runtime.load_slo_policy(&spec.slo_policy)?;
            let wit: Vec<plugin::Objective> = objectives.iter().map(to_wit_objective).collect();
            policy
                .check_objectives(&wit)
                .map_err(|e| RunError::Objectives {
                    policy: spec.slo_policy.clone(),
                    reason: e.to_string(),
                })?;
            Some((policy, objectives.clone(), wit))
        }
        None => None,
    };
    let target =
        Target::new(&spec.server, &spec.headers, spec.api_key.as_deref())?.with_tls(&spec.tls)?;
    let client = engine::new_client(&target, 1)?;
    let model = match &spec.model {
        Some(m) => m.clone(),
        None => engine::client::discover_model(&client, &target)
            .await
            .map_err(RunError::ModelDiscovery)?,
    };

    let server_version = if spec.probe_server_version {
        crate::server_version::probe(&client, &target).await
    } else {
        None
    };
    let crate::tokenize::Resolved {
        tokenizer,
        counter,
        name: tokenizer_name,
        fallback,
    } = crate::tokenize::resolve(&spec.tokenizer, &adapter, &target, &model, spec.endpoint).await?;
    if let Some(why) = &fallback {
        tracing::warn!(
            "prompts are sized with cl100k_base because {why}; the server counts a different \
             number of tokens (each level's workload line says how many). Pass --tokenizer \
             with the model's tokenizer.json or directory to size them in its tokens"
        );
    }
    let tokenizer = Arc::new(tokenizer);
    let n = prompts_needed(&spec.levels);
    let items = match (&counter, &spec.dataset) {
        (Some(counter), DatasetSpec::Synthetic { .. }) => {
            dataset::synthetic_counted(&spec.dataset, counter, spec.endpoint, n, spec.seed).await?
        }
        (counter, _) => {
            let (ds, tk, endpoint, seed) = (
                spec.dataset.clone(),
                tokenizer.clone(),
                spec.endpoint,
                spec.seed,
            );
            let mut items =
                tokio::task::spawn_blocking(move || dataset::load(&ds, &tk, endpoint, n, seed))
                    .await
                    .map_err(|e| RunError::ModelDiscovery(format!("dataset task failed: {e}")))??;
            if let Some(counter) = counter {
                dataset::recount(&mut items, counter).await?;
            }
            items
        }
    };
    // The tokenize client's connections close with it, before the run opens its own.
    drop(counter);
    let requests: Vec<PreparedRequest> = items
        .into_iter()
        .map(|item| PreparedRequest {
            input_tokens: item.input_tokens,
            request: spec.generation_request(&model, Prompt::from(&item.prompt), item.max_tokens),
        })
        .collect();
    // What the adapter really puts in a request, as recorded with the result.
    let sent = requests
        .first()
        .and_then(|r| adapter.build_request(&r.request).ok())
        .map(|http| request_shape::sent(&http.body))
        .unwrap_or_default();

    let ctx = Arc::new(RunContext {
        pool: engine::ConnectionPool::new(&target, spec.kernel_timestamps)
            .map_err(engine::ClientError::from)?,
        target,
        adapter: adapter.clone(),
        timeout: spec.timeout,
        metric_mode: spec.metric_mode,
        requests,
        record_sink: sink,
        served_model: std::sync::OnceLock::new(),
        ramp: spec.ramp,
        shard: spec.shard,
        start: spec.start,
    });
    if spec.preflight {
        let text = engine::preflight::PROMPT.to_owned();
        let prompt = match spec.endpoint {
            Endpoint::Completions => Prompt::Text(text),
            Endpoint::Chat => Prompt::Chat(vec![crate::plugin::Message {
                role: "user".to_owned(),
                content: text,
            }]),
        };
        let request = spec.generation_request(&model, prompt, 1);
        let took = engine::preflight::check(&ctx, request)
            .await
            .map_err(RunError::Preflight)?;
        tracing::info!("pre-flight request answered in {took:?}");
    }
    // Started after the prompts are ready and before the first level: the readings span the
    // levels and nothing before them.
    let beside = Beside::start(
        &spec.telemetry,
        &spec.headers,
        spec.api_key.as_deref(),
        &spec.tls,
    )
    .await
    .map_err(RunError::Unsupported)?;
    let runs = engine::run_levels(ctx.clone(), &spec.levels, events, cancel.clone()).await;
    let ctx_served_model = ctx.served_model.get().cloned();
    let starts: Vec<std::time::Instant> = runs.iter().map(|(_, run)| run.started).collect();
    let readings = beside.finish(&starts);

    let mut levels = Vec::new();
    let mut all_records = Vec::new();
    for (i, (plan, run)) in runs.into_iter().enumerate() {
        let LevelRun {
            records,
            interrupted,
            wall_s,
            started: _,
            started_wall,
            client,
        } = run;
        let records = settle_tokens(records, tokenizer.clone()).await;
        // Settled counts: a server that reports no usage has its tokens counted by the client.
        let tokens = records.iter().map(|r| u64::from(r.output_tokens)).sum();
        let (level_gpu, level_server) = readings.level(i, wall_s, tokens);
        let judged = match &slo {
            Some((policy, objectives, wit)) => Some(judge(policy, objectives, wit, &records)?),
            None => None,
        };
        let summary = LevelSummary::compute(&records, judged.as_ref());
        let mut hist = LevelHistograms::default();
        for r in &records {
            hist.record(r);
        }
        levels.push(LevelResult {
            label: plan.load.label(),
            load: plan.load,
            bound: plan.bound,
            warmup: plan.warmup,
            interrupted,
            wall_s,
            started_at: Some(crate::result::rfc3339_micros(started_wall)),
            summary,
            histograms: hist.serialize(),
            requests: spec.save_requests.then(|| records.clone()),
            gpu: level_gpu,
            server: level_server,
            client,
            phase: match plan.load {
                crate::plan::Load::Concurrency { concurrency } => crate::metrics::PhaseCheck::of(
                    &records,
                    spec.shard.share(u64::from(concurrency)) as u32,
                ),
                // A hold of a closed-loop stage keeps its clients: its phases can be checked.
                crate::plan::Load::Stage {
                    unit: crate::plan::StageUnit::Clients,
                    from,
                    to,
                    ..
                } if from == to && to >= 1.0 => {
                    crate::metrics::PhaseCheck::of(&records, spec.shard.share(to as u64) as u32)
                }
                crate::plan::Load::Rate { .. } | crate::plan::Load::Stage { .. } => None,
            },
        });
        all_records.push(records);
    }

    let result = RunResult {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo::current(),
        started_at,
        finished_at: crate::result::now_rfc3339(),
        interrupted: cancel.is_cancelled() || levels.len() < spec.levels.len(),
        settings: RunSettings {
            // What the requests carried, not what the flags said.
            ignore_eos: sent.ignore_eos,
            min_tokens: sent.min_tokens,
            unsupported: unsent.iter().map(|u| u.flag.to_string()).collect(),
            served_model: ctx_served_model,
            arrival_times: engine::h1::describe_sources(ctx.pool.read_counts()),
            tokenizer: tokenizer_name,
            server_version,
            ..spec.settings(model)
        },
        adapter: plugin_ref(adapter.identity()),
        slo_policy: slo.as_ref().map(|(p, _, _)| plugin_ref(p.identity())),
        levels,
        recommendation: None,
        gpu: readings.gpu,
        server_metrics: readings.server,
        merge: None,
        load_series: crate::plan::Profile::of(&spec.levels)
            .map(|profile| crate::metrics::load_series(&profile, &all_records)),
    };
    Ok(RunOutput {
        result,
        records: Arc::new(all_records),
    })
}

/// Count output tokens with the client tokenizer, off the async threads and
/// after the level, so tokenizing never competes with timing.
async fn settle_tokens(mut records: Vec<RequestRecord>, tk: Arc<Tokenizer>) -> Vec<RequestRecord> {
    // Only the texts travel to the blocking thread: the records stay here,
    // so a failed task can lose a count but never a measurement.
    let texts: Vec<Option<String>> = records
        .iter_mut()
        .map(|r| {
            let text = std::mem::take(&mut r.text);
            (!text.is_empty() || r.succeeded()).then_some(text)
        })
        .collect();
    let counts = tokio::task::spawn_blocking(move || {
        texts
            .iter()
            .map(|t| t.as_ref().map(|t| tk.count(t) as u32))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (i, r) in records.iter_mut().enumerate() {
        if let Some(Some(n)) = counts.get(i) {
            r.output_tokens_client = Some(*n);
        }
        r.settle_output_tokens();
    }
    records
}

/// Judges the records of a recovered run as its SLO policy would have: the run died with the
/// policy instance it judged with, so the policy is loaded anew (once per recovery, with the
/// plugin cache the CLI uses).
#[derive(Default)]
pub struct Rejudge {
    runtime: std::sync::OnceLock<Result<Arc<plugin::Runtime>, String>>,
}

impl Rejudge {
    pub fn judge(
        &self,
        slo: &crate::result::SloSettings,
        records: &[RequestRecord],
    ) -> Result<Judged, String> {
        let runtime = self
            .runtime
            .get_or_init(|| {
                plugin::Runtime::new(plugin::RuntimeConfig {
                    cache_dir: plugin::default_cache_dir(),
                    ..plugin::RuntimeConfig::default()
                })
                .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let policy = runtime
            .load_slo_policy(&slo.policy)
            .map_err(|e| e.to_string())?;
        let wit: Vec<plugin::Objective> = slo.objectives.iter().map(to_wit_objective).collect();
        judge(&policy, &slo.objectives, &wit, records).map_err(|e| e.to_string())
    }
}

fn to_wit_objective(o: &Objective) -> plugin::Objective {
    plugin::Objective {
        metric: o.metric.name().to_string(),
        threshold_ms: o.threshold_ms,
    }
}

fn judge(
    policy: &plugin::SloPolicy,
    objectives: &[Objective],
    wit: &[plugin::Objective],
    records: &[RequestRecord],
) -> Result<Judged, RunError> {
    let mut good = Vec::new();
    let mut reasons = Vec::new();
    for r in records.iter().filter(|r| !r.warmup) {
        let m = plugin::Measurement {
            succeeded: r.succeeded(),
            error_class: r.error.as_ref().map(|e| e.class.name().to_string()),
            ttft_ms: r.ttft_ms,
            tpot_ms: r.tpot_ms(),
            e2el_ms: r.e2el_ms,
            itl_ms: r.itl_ms.clone(),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
        };
        let v = policy.evaluate(&m, wit)?;
        good.push(v.good);
        reasons.push(v.reasons);
    }
    Ok(Judged {
        objectives: objectives.to_vec(),
        good,
        reasons,
    })
}
