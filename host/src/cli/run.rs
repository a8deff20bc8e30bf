//! `llm-loadtest run`: flags, an optional TOML scenario, and the run itself.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::dataset::{DatasetSpec, Endpoint};
use crate::metrics::{check_measurable, parse_objectives};
use crate::plan::stages;
use crate::plan::{Bound, LevelPlan, Load, Shard, StageUnit, StartSchedule, Warmup};
use crate::plugin::{Runtime, RuntimeConfig};
use crate::runner::{self, RunSpec};
use crate::telemetry::beside::{GpuPlan, Plan};
use crate::tokenize::TokenizerChoice;

/// Exit code when a level misses `--fail-under-attainment`.
pub const EXIT_SLO_GATE: u8 = 3;
/// Exit code after Ctrl-C (results measured so far are still written).
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit code when a level ended with no successful request: a dead or refusing server must
/// not pass a CI gate. Measured figures are still printed, written and saved.
pub const EXIT_NO_SUCCESS: u8 = 5;

/// Flags of `run`. Every flag can also be set in a `--config` TOML file under
/// the same name (`request-rate = [2.0, 4.0]`); flags given on the command
/// line win.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RunArgs {
    /// A TOML scenario file holding any of these settings.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Base URL of the server [default: http://127.0.0.1:8000].
    #[arg(long)]
    pub server: Option<String>,
    /// Model name sent with each request [default: the server's first model in /v1/models].
    #[arg(long)]
    pub model: Option<String>,
    /// Adapter: an embedded name (openai, vllm, ...) or a path to a .wasm component [default: openai].
    #[arg(long)]
    pub adapter: Option<String>,
    /// API shape of the prompts [default: completions].
    #[arg(long, value_enum)]
    pub endpoint: Option<Endpoint>,

    /// Closed loop: run each concurrency level in turn, e.g. 1,8,32,128.
    #[arg(long, value_delimiter = ',', conflicts_with = "request_rate")]
    pub concurrency: Vec<u32>,
    /// Open loop: requests per second, one level per value (`inf` sends all at once).
    #[arg(long, value_delimiter = ',')]
    pub request_rate: Vec<f64>,
    /// Gamma shape of arrival gaps: 1 is Poisson, < 1 burstier [default: 1].
    #[arg(long)]
    pub burstiness: Option<f64>,
    /// Open loop: most requests in flight; waits count as queue time.
    #[arg(long)]
    pub max_concurrency: Option<u32>,

    /// Measured requests per level [default: 100, unless --duration].
    #[arg(long)]
    pub num_prompts: Option<u64>,
    /// Issue measured requests for this long per level (e.g. 60s).
    #[arg(long, conflicts_with = "num_prompts")]
    pub duration: Option<String>,
    /// Warm-up per level, excluded from statistics: a count (10) or a time (30s).
    #[arg(long)]
    pub warmup: Option<String>,
    /// Per-request time limit [default: 10m].
    #[arg(long)]
    pub timeout: Option<String>,

    /// Seeds prompts and arrival schedules [default: a fresh one per run, recorded in the
    /// result: pass it back to repeat a run exactly].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Extra header on every request, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Bearer token for the server.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub api_key: Option<String>,

    /// Dataset: synthetic, sharegpt or jsonl [default: synthetic].
    #[arg(long)]
    pub dataset: Option<String>,
    /// File for the sharegpt and jsonl datasets.
    #[arg(long)]
    pub dataset_path: Option<PathBuf>,
    /// Synthetic prompt length in tokens [default: 512].
    #[arg(long)]
    pub input_len: Option<u32>,
    /// Synthetic output length in tokens [default: 128]; for files, overrides theirs.
    #[arg(long)]
    pub output_len: Option<u32>,
    /// Synthetic lengths vary uniformly by ± this share [default: 0].
    #[arg(long)]
    pub range_ratio: Option<f64>,
    /// Synthetic: a shared prefix of this many tokens on every prompt [default: 0].
    #[arg(long)]
    pub prefix_len: Option<u32>,
    /// Who counts prompt tokens: `auto` (the server, through the adapter's /tokenize, when it
    /// answers; else cl100k_base with a warning), `server`, `cl100k_base`, `o200k_base`, or a
    /// model's tokenizer.json / model directory [default: auto].
    #[arg(long)]
    #[schemars(with = "Option<String>")]
    pub tokenizer: Option<TokenizerChoice>,

    /// max_tokens for every request (overrides the dataset's lengths).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// min_tokens for every request, where the adapter supports it.
    #[arg(long)]
    pub min_tokens: Option<u32>,
    /// Ask the server to ignore end-of-sequence (exact output lengths).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Run even when the adapter does not declare it can send a flag asked for (e.g.
    /// --ignore-eos through ollama); the result records what the requests carried.
    #[arg(long)]
    pub allow_unsupported: bool,
    #[arg(long)]
    pub temperature: Option<f32>,
    /// A JSON object merged into every request body.
    #[arg(long)]
    pub extra_body: Option<String>,
    /// Send non-streaming requests (TTFT is then not measurable).
    #[arg(long)]
    pub no_stream: bool,
    /// Skip the pre-flight request: by default one short request (one output token, a prompt
    /// outside the workload) goes first, and the run stops with the server's own error text
    /// if it fails (wrong model, 401, nothing listening).
    #[arg(long)]
    pub no_preflight: bool,
    /// Trust the PEM certificates in FILE besides the platform's roots (`https://` servers
    /// with a private CA).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Do not check `https://` servers' certificates (self-signed test servers). Warned, and
    /// recorded with the result.
    #[arg(long, conflicts_with = "ca_cert")]
    pub insecure: bool,
    /// Time response bytes by the clock read after each read, not by the kernel's receive
    /// timestamps (which Linux gives for plain-TCP servers and which stay exact when this
    /// client is busy). For comparing the two; the result records which was used.
    #[arg(long)]
    pub clock_timestamps: bool,
    /// Start a closed-loop level's clients spread evenly over this time (e.g. 30s) instead of
    /// all at once, so they do not send, queue and finish in lockstep. The ramp counts as
    /// warm-up: statistics begin when the last client has started (a --warmup duration runs
    /// after it).
    #[arg(long, value_name = "DURATION")]
    pub ramp_up: Option<String>,
    /// Staged closed loop, as k6 writes it: `30s:100,5m:100,30s:0` ramps to 100 clients over
    /// 30 s, holds 5 min and ramps down, each stage from where the last ended (0 at first);
    /// one level per stage, run back to back with no pause. Instead of --concurrency.
    #[arg(long, value_name = "DURATION:CLIENTS,...", conflicts_with_all = ["concurrency", "request_rate", "rate_stages"])]
    pub stages: Option<String>,
    /// Staged open loop: `1m:20,5m:20` ramps the arrival rate linearly to 20 requests/s over a
    /// minute, then holds it (with --burstiness, --max-concurrency). Instead of --request-rate.
    #[arg(long, value_name = "DURATION:RATE,...", conflicts_with_all = ["concurrency", "request_rate"])]
    pub rate_stages: Option<String>,
    /// Which streamed chunks are token arrivals: `content` (chunks with text, when a user
    /// sees output) or `vllm` (every chunk with a choice, as vLLM's bench serve times them)
    /// [default: content].
    #[arg(long, value_enum)]
    pub metric_mode: Option<crate::metrics::MetricMode>,

    /// Service-level objectives, e.g. ttft:500ms,tpot:50ms,e2el:10s.
    #[arg(long)]
    pub slo: Option<String>,
    /// SLO policy: embedded `slo` or a .wasm component [default: slo].
    #[arg(long)]
    pub slo_policy: Option<String>,
    /// Exit with code 3 when any level's SLO attainment (%) is below this.
    #[arg(long, requires = "slo")]
    pub fail_under_attainment: Option<f64>,

    /// Sample this machine's GPUs (NVML) at this interval while the levels run, for each
    /// level's utilisation, memory, power and energy per output token [default: 500ms when
    /// --server is a loopback address, so the server runs here; otherwise off unless given].
    #[arg(long, conflicts_with = "no_gpu")]
    pub gpu_interval: Option<String>,
    /// Do not sample GPUs.
    #[arg(long)]
    pub no_gpu: bool,
    /// Read the GPUs from a DCGM exporter's Prometheus endpoint instead of this machine's NVML
    /// (the client on another machine than the GPUs), e.g. http://gpu-node:9400/metrics.
    #[arg(long, conflicts_with = "no_gpu", value_name = "URL")]
    pub gpu_metrics: Option<String>,
    /// Scrape the server's Prometheus metrics while the levels run (running and waiting
    /// requests, KV-cache use, preemptions, prefix-cache hits, its own TTFT and ITL), at
    /// --gpu-interval (500ms). Without a URL: the server's /metrics (Triton: port 8002).
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "URL")]
    pub server_metrics: Option<String>,

    /// Write the result here (JSON).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Output format: native (our versioned schema) or vllm (bench serve's JSON) [default: native].
    #[arg(long)]
    pub output_format: Option<String>,
    /// Keep every request's record in the result.
    #[arg(long)]
    pub save_requests: bool,
    /// Labels stored with the result (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Do not save the run in the store.
    #[arg(long)]
    pub no_save: bool,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// No live progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Directory for cached compiled plugins [default: the user's cache dir].
    #[arg(long, env = "LLM_LOADTEST_PLUGIN_CACHE")]
    pub plugin_cache: Option<PathBuf>,
    /// Run on a `serve` instance instead of here (its key from LLM_LOADTEST_API_KEY): it sends
    /// the requests and keeps the result; this prints its progress and the table.
    #[arg(long, env = "LLM_LOADTEST_REMOTE", value_name = "URL")]
    #[serde(skip)]
    pub remote: Option<String>,
    /// Run shard I of N (`2/8`, counted from 1): this process sends its share of every level —
    /// clients, arrivals and prompts dealt round-robin by request index — and `merge` joins the
    /// shards' results into one run.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    #[serde(skip)]
    pub shard: Option<String>,
    /// Run one of N shards, its index (from 0) read from JOB_COMPLETION_INDEX, as a Kubernetes
    /// Indexed Job sets it (see `k8s job`).
    #[arg(long, value_name = "N")]
    #[serde(skip)]
    pub shards: Option<u32>,
    /// Start the first level at this wall-clock instant (RFC 3339, e.g. 2026-12-05T10:00:00Z), so
    /// that shards on other machines start together.
    #[arg(long, value_name = "RFC3339")]
    #[serde(skip)]
    pub start_at: Option<String>,
    /// With --start-at and several levels: level k starts at start-at + k × this (e.g. 90s), so
    /// the shards start every level together. It must outlast each level.
    #[arg(long, value_name = "DURATION", requires = "start_at")]
    #[serde(skip)]
    pub level_interval: Option<String>,
}

/// A usage problem: the message is shown and the exit code is 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

impl RunArgs {
    /// Fold in the `--config` file: its values apply where no flag was given.
    pub fn merged(self) -> Result<RunArgs, UsageError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| usage(format!("cannot read config {}: {e}", path.display())))?;
        let file: toml::Table = toml::from_str(&text)
            .map_err(|e| usage(format!("config {} is not valid TOML: {e}", path.display())))?;
        let mut merged = serde_json::to_value(&file)
            .map_err(|e| usage(format!("config {}: {e}", path.display())))?;
        let flags = serde_json::to_value(&self).map_err(|e| usage(e.to_string()))?;
        if let (Some(m), Some(f)) = (merged.as_object_mut(), flags.as_object()) {
            for (k, v) in f {
                let given = match v {
                    serde_json::Value::Null => false,
                    serde_json::Value::Bool(b) => *b,
                    serde_json::Value::Array(a) => !a.is_empty(),
                    _ => true,
                };
                if given {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        let mut out: RunArgs = serde_json::from_value(merged)
            .map_err(|e| usage(format!("config {}: {e}", path.display())))?;
        out.config = self.config;
        out.api_key = self.api_key;
        out.remote = self.remote;
        out.shard = self.shard;
        out.shards = self.shards;
        out.start_at = self.start_at;
        out.level_interval = self.level_interval;
        Ok(out)
    }

    /// Validate everything and build the run.
    pub fn to_spec(&self) -> Result<RunSpec, UsageError> {
        let dur = |name: &str, s: &str| -> Result<Duration, UsageError> {
            crate::duration::parse(s).map_err(|e| usage(format!("--{name}: {e}")))
        };
        let bound = match (&self.duration, self.num_prompts) {
            (Some(d), _) => {
                let d = dur("duration", d)?;
                if d.is_zero() {
                    return Err(usage("--duration must be above zero"));
                }
                Bound::Seconds(d.as_secs_f64())
            }
            (None, Some(0)) => return Err(usage("--num-prompts must be at least 1")),
            (None, n) => Bound::Requests(n.unwrap_or(100)),
        };
        let warmup = match self.warmup.as_deref().map(str::trim) {
            None | Some("") | Some("0") => Warmup::None,
            Some(w) if w.chars().all(|c| c.is_ascii_digit()) => Warmup::Requests(
                w.parse()
                    .map_err(|_| usage(format!("--warmup `{w}` is too large")))?,
            ),
            Some(w) => Warmup::Seconds(dur("warmup", w)?.as_secs_f64()),
        };
        let ramp = match &self.ramp_up {
            Some(r) => dur("ramp-up", r)?,
            None => Duration::ZERO,
        };
        let warmup = with_ramp(warmup, ramp, !self.request_rate.is_empty())?;
        let shard = self.shard_of(std::env::var("JOB_COMPLETION_INDEX").ok().as_deref())?;
        // Without --seed every run draws its own (recorded in the result), so two runs of one
        // command send different prompts and neither is served from the other's prompt cache.
        // Shards must send one workload between them: they share a seed.
        let seed = match self.seed {
            Some(seed) => seed,
            None if shard.is_sharded() => self.shared_seed()?,
            None => rand::random(),
        };
        let burstiness = self.burstiness.unwrap_or(1.0);
        if !(burstiness.is_finite() && burstiness > 0.0) {
            return Err(usage("--burstiness must be a positive number"));
        }
        let mut levels = Vec::new();
        let staged = match (&self.stages, &self.rate_stages) {
            (Some(s), _) => Some(("stages", s, StageUnit::Clients)),
            (None, Some(s)) => Some(("rate-stages", s, StageUnit::Rate)),
            (None, None) => None,
        };
        if let Some((flag, text, unit)) = staged {
            // Stages say how long and how much: a level's own bounds, warm-up and ramp do not
            // apply (the first stage is the ramp, and each stage is reported apart).
            for (given, name) in [
                (self.num_prompts.is_some(), "--num-prompts"),
                (self.duration.is_some(), "--duration"),
                (self.warmup.is_some(), "--warmup"),
                (self.ramp_up.is_some(), "--ramp-up"),
                (!self.concurrency.is_empty(), "--concurrency"),
                (!self.request_rate.is_empty(), "--request-rate"),
                (self.level_interval.is_some(), "--level-interval"),
            ] {
                if given {
                    return Err(usage(format!(
                        "--{flag} sets each stage's load and length: leave out {name}"
                    )));
                }
            }
            let profile = stages::parse(text, unit).map_err(|e| usage(format!("--{flag}: {e}")))?;
            if unit == StageUnit::Clients && self.max_concurrency.is_some() {
                return Err(usage(
                    "--max-concurrency limits an open loop; --stages sets the clients",
                ));
            }
            levels = profile.levels(burstiness, self.max_concurrency, seed);
        } else if !self.request_rate.is_empty() {
            for (i, &rate) in self.request_rate.iter().enumerate() {
                if rate.is_nan() || rate <= 0.0 {
                    return Err(usage(format!("--request-rate {rate} must be above zero")));
                }
                if rate.is_infinite() && matches!(bound, Bound::Seconds(_)) {
                    return Err(usage(
                        "--request-rate inf needs --num-prompts, not --duration",
                    ));
                }
                levels.push(LevelPlan {
                    load: Load::Rate {
                        rate,
                        burstiness,
                        max_concurrency: self.max_concurrency,
                    },
                    bound,
                    warmup,
                    seed: seed.wrapping_add(i as u64),
                });
            }
        } else {
            let conc = if self.concurrency.is_empty() {
                vec![1]
            } else {
                self.concurrency.clone()
            };
            for (i, c) in conc.into_iter().enumerate() {
                if c == 0 {
                    return Err(usage("--concurrency levels must be at least 1"));
                }
                levels.push(LevelPlan {
                    load: Load::Concurrency { concurrency: c },
                    bound,
                    warmup,
                    seed: seed.wrapping_add(i as u64),
                });
            }
        }
        if self.max_concurrency == Some(0) {
            return Err(usage("--max-concurrency must be at least 1"));
        }

        let output_len = self.output_len.unwrap_or(128);
        let kind = self.dataset.as_deref().unwrap_or("synthetic");
        let need_path = || {
            self.dataset_path
                .clone()
                .ok_or_else(|| usage(format!("--dataset {kind} needs --dataset-path FILE")))
        };
        let (dataset, dataset_label) = match kind {
            "synthetic" | "random" => {
                let input_len = self.input_len.unwrap_or(512);
                let range_ratio = self.range_ratio.unwrap_or(0.0);
                if input_len == 0 || output_len == 0 {
                    return Err(usage("--input-len and --output-len must be at least 1"));
                }
                if !(0.0..1.0).contains(&range_ratio) {
                    return Err(usage("--range-ratio must be in [0, 1)"));
                }
                let prefix_len = self.prefix_len.unwrap_or(0);
                (
                    DatasetSpec::Synthetic {
                        input_len,
                        output_len,
                        range_ratio,
                        prefix_len,
                    },
                    format!(
                        "synthetic input={input_len} output={output_len} range={range_ratio} prefix={prefix_len}"
                    ),
                )
            }
            "sharegpt" => {
                let path = need_path()?;
                let label = format!("sharegpt {}", path.display());
                (
                    DatasetSpec::ShareGpt {
                        path,
                        output_len: self.output_len,
                    },
                    label,
                )
            }
            "jsonl" => {
                let path = need_path()?;
                let label = format!("jsonl {}", path.display());
                (DatasetSpec::Jsonl { path, output_len }, label)
            }
            other => {
                return Err(usage(format!(
                    "--dataset `{other}` is unknown: use synthetic, sharegpt or jsonl"
                )));
            }
        };

        let mut headers = Vec::new();
        for h in &self.headers {
            let (k, v) = h
                .split_once(':')
                .ok_or_else(|| usage(format!("--header `{h}` is not NAME:VALUE")))?;
            if k.trim().is_empty() {
                return Err(usage(format!("--header `{h}` has no name")));
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        if let Some(body) = &self.extra_body {
            let v: serde_json::Value = serde_json::from_str(body)
                .map_err(|e| usage(format!("--extra-body is not JSON: {e}")))?;
            if !v.is_object() {
                return Err(usage("--extra-body must be a JSON object"));
            }
        }
        let slo = match &self.slo {
            Some(s) => Some(parse_objectives(s).map_err(|e| usage(format!("--slo: {e}")))?),
            None => None,
        };
        if let Some(objectives) = &slo {
            check_measurable(objectives, !self.no_stream)
                .map_err(|e| usage(format!("--slo {e}")))?;
        }
        if let Some(a) = self.fail_under_attainment
            && !(0.0..=100.0).contains(&a)
        {
            return Err(usage("--fail-under-attainment is a percentage in [0, 100]"));
        }
        match self.output_format.as_deref() {
            None | Some("native") | Some("vllm") => {}
            Some(f) => return Err(usage(format!("--output-format `{f}`: use native or vllm"))),
        }
        let timeout = dur("timeout", self.timeout.as_deref().unwrap_or("10m"))?;
        if timeout.is_zero() {
            return Err(usage("--timeout must be above zero"));
        }
        let server = self
            .server
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:8000".to_string());
        let interval = match &self.gpu_interval {
            Some(s) => {
                let d = dur("gpu-interval", s)?;
                if d < Duration::from_millis(1) {
                    return Err(usage("--gpu-interval must be at least 1ms"));
                }
                d
            }
            None => Duration::from_millis(500),
        };
        let gpu = match (&self.gpu_metrics, self.no_gpu) {
            (_, true) => None,
            (Some(url), false) => Some(GpuPlan::Dcgm {
                url: url.clone(),
                interval,
            }),
            // A server elsewhere runs on other GPUs than this machine's: sample them only when
            // asked to.
            (None, false) => (self.gpu_interval.is_some() || crate::gpu::is_loopback(&server))
                .then_some(GpuPlan::Local { interval }),
        };
        let telemetry_interval = interval;
        let server_metrics = match self.server_metrics.as_deref() {
            None => None,
            Some("") => Some((
                default_metrics_url(&server, self.adapter.as_deref().unwrap_or("openai"))?,
                telemetry_interval,
            )),
            Some(url) => Some((url.to_owned(), telemetry_interval)),
        };
        // A staged run is one schedule: its stages start together at --start-at.
        let start = self.start_schedule(if staged.is_some() { 1 } else { levels.len() })?;
        if shard.is_sharded()
            && let Some(m) = self.max_concurrency
            && u64::from(m) < u64::from(shard.count)
        {
            return Err(usage(format!(
                "--max-concurrency {m} cannot be split over {} shards: give each at least 1",
                shard.count
            )));
        }
        Ok(RunSpec {
            server,
            model: self.model.clone(),
            adapter: self.adapter.clone().unwrap_or_else(|| "openai".to_string()),
            endpoint: self.endpoint.unwrap_or(Endpoint::Completions),
            levels,
            dataset,
            dataset_label,
            tokenizer: self.tokenizer.clone().unwrap_or_default(),
            seed,
            headers,
            api_key: self.api_key.clone(),
            max_tokens: self.max_tokens,
            min_tokens: self.min_tokens,
            ignore_eos: self.ignore_eos,
            temperature: self.temperature,
            extra_body: self.extra_body.clone(),
            stream: !self.no_stream,
            metric_mode: self.metric_mode.unwrap_or_default(),
            timeout,
            slo,
            slo_policy: self.slo_policy.clone().unwrap_or_else(|| "slo".to_string()),
            save_requests: self.save_requests,
            tags: self.tags.clone(),
            allow_unsupported: self.allow_unsupported,
            probe_server_version: true,
            ramp,
            shard,
            start,
            preflight: !self.no_preflight,
            kernel_timestamps: !self.clock_timestamps,
            tls: crate::engine::tls::TlsOptions {
                ca_cert: self.ca_cert.clone(),
                insecure: self.insecure,
            },
            telemetry: Plan {
                gpu,
                server_metrics,
            },
        })
    }
}

/// The warm-up with a ramp of `ramp` (zero: none): the ramp counts as warm-up, so the level's
/// statistics begin when its last client has started, and a `--warmup` duration runs after it.
fn with_ramp(warmup: Warmup, ramp: Duration, open_loop: bool) -> Result<Warmup, UsageError> {
    if ramp.is_zero() {
        return Ok(warmup);
    }
    if open_loop {
        return Err(usage(
            "--ramp-up starts closed-loop clients (--concurrency) over time; an open loop's \
             arrival rate is its own shape",
        ));
    }
    let ramp = ramp.as_secs_f64();
    match warmup {
        Warmup::None => Ok(Warmup::Seconds(ramp)),
        Warmup::Seconds(s) => Ok(Warmup::Seconds(ramp + s)),
        Warmup::Requests(_) => Err(usage(
            "--ramp-up counts as warm-up by time: give --warmup as a duration (it then runs \
             after the ramp), or leave it out",
        )),
    }
}

impl RunArgs {
    /// Which shard this process is: `--shard I/N`, or `--shards N` with the index from
    /// `job_index` (JOB_COMPLETION_INDEX), or the whole run.
    fn shard_of(&self, job_index: Option<&str>) -> Result<Shard, UsageError> {
        match (&self.shard, self.shards) {
            (Some(spec), _) => Shard::parse(spec).map_err(|e| usage(format!("--shard: {e}"))),
            (None, Some(count)) => {
                let Some(index) = job_index else {
                    return Err(usage(
                        "--shards needs JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job); \
                         elsewhere, pass --shard I/N",
                    ));
                };
                Shard::from_job_index(index, count).map_err(|e| usage(format!("--shards: {e}")))
            }
            (None, None) => Ok(Shard::WHOLE),
        }
    }

    /// The seed shards without `--seed` share: drawn from their shared start instant, so every
    /// shard of one launch sends the same prompts and the next launch others.
    fn shared_seed(&self) -> Result<u64, UsageError> {
        let at = self
            .start_at
            .as_deref()
            .and_then(|s| humantime::parse_rfc3339_weak(s.trim()).ok());
        let Some(at) = at else {
            return Err(usage(
                "a sharded run needs --seed (or --start-at, from which every shard draws the same \
                 seed): shards must send one workload between them",
            ));
        };
        let nanos = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(nanos as u64)
    }

    /// `--start-at` and `--level-interval` as a schedule for `levels` levels.
    fn start_schedule(&self, levels: usize) -> Result<Option<StartSchedule>, UsageError> {
        let Some(at) = &self.start_at else {
            return Ok(None);
        };
        let at = humantime::parse_rfc3339_weak(at.trim()).map_err(|e| {
            usage(format!(
                "--start-at `{at}` is not an RFC 3339 instant ({e}); e.g. 2026-12-05T10:00:00Z"
            ))
        })?;
        let interval = match &self.level_interval {
            Some(d) => {
                let d = crate::duration::parse(d)
                    .map_err(|e| usage(format!("--level-interval: {e}")))?;
                if d.is_zero() {
                    return Err(usage("--level-interval must be above zero"));
                }
                Some(d)
            }
            None if levels > 1 => {
                return Err(usage(format!(
                    "--start-at with {levels} levels needs --level-interval, so that every shard \
                     starts every level at the same instant"
                )));
            }
            None => None,
        };
        Ok(Some(StartSchedule { at, interval }))
    }
}

/// Where a server publishes its metrics by default: `/metrics` beside its API, except Triton's,
/// on port 8002 of the same host.
fn default_metrics_url(server: &str, adapter: &str) -> Result<String, UsageError> {
    let uri: http::Uri = server
        .parse()
        .map_err(|e| usage(format!("--server {server}: {e}")))?;
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("127.0.0.1");
    let authority = uri.authority().map_or(host, |a| a.as_str());
    Ok(if adapter == "triton" {
        format!("{scheme}://{host}:8002/metrics")
    } else {
        format!("{scheme}://{authority}/metrics")
    })
}

/// Run `run` from parsed flags.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let args = match args.merged() {
        Ok(a) => a,
        Err(e) => return Ok(usage_exit(&e)),
    };
    if let Some(remote) = crate::remote::chosen(args.remote.as_deref())? {
        if args.shard.is_some() || args.shards.is_some() || args.start_at.is_some() {
            // A `serve` instance would send the whole load from its one machine.
            return Ok(usage_exit(&usage(
                "--shard, --shards and --start-at run here: a shard sends its share from this \
                 machine; write its result with --output and `import --remote` it to the server",
            )));
        }
        return super::run_remote::run(args, remote);
    }
    let spec = match args.to_spec() {
        Ok(s) => s,
        Err(e) => return Ok(usage_exit(&e)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(args, spec))
}

/// Run on an existing runtime (the demo shares one with its simulator).
pub fn run_on(rt: &tokio::runtime::Runtime, args: RunArgs) -> anyhow::Result<ExitCode> {
    let args = match args.merged() {
        Ok(a) => a,
        Err(e) => return Ok(usage_exit(&e)),
    };
    let spec = match args.to_spec() {
        Ok(s) => s,
        Err(e) => return Ok(usage_exit(&e)),
    };
    rt.block_on(run_async(args, spec))
}

fn usage_exit(e: &UsageError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(super::EXIT_USAGE)
}

/// The plugin runtime for `args`: its plugin cache, or the default one.
pub(super) fn plugin_runtime(
    args: &RunArgs,
) -> Result<std::sync::Arc<Runtime>, crate::plugin::PluginError> {
    Runtime::new(RuntimeConfig {
        cache_dir: args
            .plugin_cache
            .clone()
            .or_else(crate::plugin::default_cache_dir),
        ..RuntimeConfig::default()
    })
}

/// A token Ctrl-C cancels, saying `then` (what happens to the work so far). Call inside a
/// tokio runtime.
pub(super) fn cancel_on_ctrl_c(then: &'static str) -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: {then}");
            token.cancel();
        }
    });
    cancel
}

async fn run_async(args: RunArgs, spec: RunSpec) -> anyhow::Result<ExitCode> {
    raise_fd_limit();
    warn_about_transport(&spec);
    let runtime = plugin_runtime(&args)?;
    let cancel = cancel_on_ctrl_c("finishing with what was measured");
    let (tx, rx) = broadcast::channel(1024);
    let show_bar = !args.no_progress && std::io::stderr().is_terminal();
    let view = tokio::spawn(crate::report::progress::render(rx, show_bar));
    let mut recorder = if args.no_save {
        None
    } else {
        match crate::store::recorder::begin(args.data_dir.as_deref(), &spec, tx.subscribe()).await {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: {e} (or pass --no-save)");
                return Ok(ExitCode::from(1));
            }
        }
    };
    let sink = recorder.as_mut().and_then(|r| r.take_sink());
    let out = runner::execute_with_sink(&spec, &runtime, tx, cancel.clone(), sink).await;
    let _ = view.await;
    let saved = match recorder {
        Some(r) => crate::store::recorder::end(r, out.as_ref().ok()).await,
        None => None,
    };
    let out = match out {
        Err(runner::RunError::Unsupported(message)) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
        other => other?,
    };

    let result = &out.result;
    println!("{}", crate::report::table::render(result));
    for note in crate::report::table::notes(result) {
        println!("{note}");
    }
    if let Some(path) = &args.output {
        write_output(path, args.output_format.as_deref(), &out)?;
        println!("result written to {}", path.display());
    }
    if let Some(line) = saved {
        println!("{line}");
    }
    println!(
        "seed {} (pass --seed {} to send the same prompts again)",
        result.settings.seed, result.settings.seed
    );
    if result.interrupted && cancel.is_cancelled() {
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(verdict(result, args.fail_under_attainment))
}

/// The exit code of a run that was measured to its end: [`EXIT_NO_SUCCESS`] when a level had
/// no successful request, [`EXIT_SLO_GATE`] when one missed `fail_under` attainment, else 0.
/// Says why on stderr.
pub(super) fn verdict(result: &crate::result::RunResult, fail_under: Option<f64>) -> ExitCode {
    let empty: Vec<&str> = result
        .levels
        .iter()
        .filter(|l| l.summary.requests > 0 && l.summary.completed == 0)
        .map(|l| l.label.as_str())
        .collect();
    if !empty.is_empty() {
        eprintln!(
            "error: no request succeeded at {} (exit code {EXIT_NO_SUCCESS}); the errors above say why",
            empty.join(", ")
        );
        return ExitCode::from(EXIT_NO_SUCCESS);
    }
    if let Some(min) = fail_under {
        let short: Vec<String> = result
            .levels
            .iter()
            .filter_map(|l| {
                let a = l.summary.goodput.as_ref().map_or(0.0, |g| g.attainment_pct);
                (a < min).then(|| format!("{} ({a:.1} %)", l.label))
            })
            .collect();
        if !short.is_empty() {
            eprintln!(
                "SLO gate failed: attainment below {min} % at {}",
                short.join(", ")
            );
            return ExitCode::from(EXIT_SLO_GATE);
        }
    }
    ExitCode::SUCCESS
}

/// Says what the connections will not do that a user might expect: check certificates under
/// `--insecure`, or go through a proxy named in the environment.
fn warn_about_transport(spec: &RunSpec) {
    let https = spec.server.starts_with("https://");
    if https && spec.tls.insecure {
        eprintln!(
            "WARNING: --insecure: {}'s certificate is not checked, so anything on the path can \
             answer in its place; the result records that it ran insecure",
            spec.server
        );
    }
    let proxy = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
    ]
    .into_iter()
    .find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    if let Some(var) = proxy {
        eprintln!(
            "note: {var} is set and not used: requests go straight to the server, since a proxy \
             would add its own latency to every figure (see the README)"
        );
    }
}

pub(super) fn write_output(
    path: &Path,
    format: Option<&str>,
    out: &runner::RunOutput,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match format.unwrap_or("native") {
        "vllm" => {
            crate::result::vllm::write_levels(path, &out.result, |i| {
                out.records.get(i).map_or(&[][..], Vec::as_slice)
            })?;
        }
        _ => {
            std::fs::write(path, serde_json::to_vec_pretty(&out.result)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// A level of N streams needs N sockets: lift the soft descriptor limit to
/// the hard one (no privileges needed).
pub(crate) fn raise_fd_limit() {
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get()
        && soft < hard
    {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut RunArgs)) -> RunArgs {
        let mut a = RunArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn defaults_are_one_closed_loop_level_of_100() {
        let s = RunArgs::default().to_spec().unwrap();
        assert_eq!(s.levels.len(), 1);
        assert_eq!(s.levels[0].load, Load::Concurrency { concurrency: 1 });
        assert_eq!(s.levels[0].bound, Bound::Requests(100));
        assert_eq!(s.adapter, "openai");
        assert!(s.stream);
    }

    #[test]
    fn rates_make_open_loop_levels() {
        let s = args(|a| {
            a.request_rate = vec![2.0, f64::INFINITY];
            a.max_concurrency = Some(4);
            a.warmup = Some("30s".into());
        })
        .to_spec()
        .unwrap();
        assert_eq!(s.levels.len(), 2);
        assert!(
            matches!(s.levels[1].load, Load::Rate { rate, max_concurrency: Some(4), .. } if rate.is_infinite())
        );
        assert_eq!(s.levels[0].warmup, Warmup::Seconds(30.0));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            args(|a| a.concurrency = vec![0]),
            args(|a| a.request_rate = vec![-1.0]),
            args(|a| a.duration = Some("soon".into())),
            args(|a| a.headers = vec!["nocolon".into()]),
            args(|a| a.extra_body = Some("[1]".into())),
            args(|a| a.slo = Some("ttft:fast".into())),
            args(|a| a.dataset = Some("sharegpt".into())),
            args(|a| a.output_format = Some("xml".into())),
            args(|a| a.range_ratio = Some(1.5)),
            args(|a| {
                a.no_stream = true;
                a.slo = Some("e2el:10s,ttft:1s".into());
            }),
        ] {
            assert!(bad.to_spec().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_file_applies_where_no_flag_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(
            &path,
            "server = \"http://127.0.0.1:9\"\nconcurrency = [1, 8]\nnum-prompts = 7\nignore-eos = true\nmodel = \"file-model\"\n",
        )
        .unwrap();
        let merged = args(|a| {
            a.config = Some(path.clone());
            a.model = Some("flag-model".into());
        })
        .merged()
        .unwrap();
        assert_eq!(merged.server.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(merged.concurrency, vec![1, 8]);
        assert_eq!(merged.model.as_deref(), Some("flag-model"));
        assert!(merged.ignore_eos);
        std::fs::write(&path, "no-such-flag = 1\n").unwrap();
        let err = args(|a| a.config = Some(path.clone()))
            .merged()
            .unwrap_err();
        assert!(err.0.contains("no-such-flag"), "{err}");
    }
}
