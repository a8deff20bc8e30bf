//! The result of a run, in a versioned schema (see `schemas/`).
//!
//! Every stored or written result carries `schema_version`; a reader checks
//! it before trusting the rest, so an upgrade never misreads old data.
pub mod import_vllm;
pub mod vllm;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::histogram::SerializedHistograms;
use crate::metrics::{LevelSummary, RequestRecord};
use crate::plan::{Bound, Load, Warmup};

/// Bump on any change that an older reader would misread.
pub const SCHEMA_VERSION: u32 = 1;

/// The tool that wrote a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl ToolInfo {
    pub fn current() -> ToolInfo {
        ToolInfo {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Which plugin did the work, down to its content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PluginRef {
    pub name: String,
    pub version: String,
    pub wit_version: String,
    pub sha256: String,
    /// `embedded`, or the file it was loaded from.
    pub source: String,
}

/// The settings a run was made with. Header values and API keys are never
/// recorded, only header names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSettings {
    pub server: String,
    pub model: String,
    pub endpoint: String,
    pub dataset: String,
    pub tokenizer: String,
    pub stream: bool,
    /// Which streamed chunks were token arrivals (absent in results before 0.2: `content`).
    #[serde(default)]
    pub metric_mode: crate::metrics::MetricMode,
    pub max_tokens: Option<u32>,
    /// `min_tokens` as the adapter put it in the requests (not merely as asked).
    pub min_tokens: Option<u32>,
    /// Whether the adapter put `ignore_eos: true` in the requests (not merely asked).
    pub ignore_eos: bool,
    pub temperature: Option<f32>,
    pub timeout_s: f64,
    pub seed: u64,
    pub header_names: Vec<String>,
    pub api_key_set: bool,
    pub tags: Vec<String>,
    /// Flags the adapter does not declare it can honour, run anyway with
    /// `--allow-unsupported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<String>,
    /// The model the server said it served (`model` in its responses), when it said one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_model: Option<String>,
    /// The server software and version, as the server said at `/version`, `/info`, ...
    /// (`vLLM 0.32.0`); absent when it said none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// How an `https://` server's certificate was checked (`--insecure`: it was not); absent
    /// for `http://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Where the arrival times of response bytes came from: the kernel's receive timestamps,
    /// the clock read after each read, or both with their shares (absent in results made
    /// before it was recorded, and in imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_times: Option<String>,
    /// Closed-loop clients started spread evenly over this many seconds per level (`--ramp-up`;
    /// the ramp counts as warm-up); absent: together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up_s: Option<f64>,
    /// Which shard of a sharded run this is (`run --shard`), and the start schedule the shards
    /// shared; absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardSettings>,
    /// The run's objectives and the policy that judged them (`slo`, or a component's path),
    /// kept from the start so a run that died can be judged again when it is recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSettings>,
}

/// A shard's place in a sharded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShardSettings {
    /// Zero-based.
    pub index: u32,
    pub count: u32,
    /// When level 0 was due (RFC 3339), when the shards shared a start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// Level `k` was due at `start_at + k × level_interval_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_interval_s: Option<f64>,
}

/// What `--slo` and `--slo-policy` asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SloSettings {
    pub objectives: Vec<crate::metrics::Objective>,
    pub policy: String,
}

/// One load level's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LevelResult {
    pub label: String,
    pub load: Load,
    pub bound: Bound,
    pub warmup: Warmup,
    /// Stopped early (Ctrl-C); the summary covers what completed.
    pub interrupted: bool,
    /// Wall time of the level, warm-up included.
    pub wall_s: f64,
    /// When the level started on the wall clock (RFC 3339, microseconds): what places shards'
    /// records on one timeline in `merge` (absent in results made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub summary: LevelSummary,
    pub histograms: SerializedHistograms,
    /// Per-request records, with `--save-requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Vec<RequestRecord>>,
    /// The local GPUs over this level's wall time, when they were sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::gpu::LevelGpu>,
    /// The server's own metrics over this level's wall time, when they were scraped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::telemetry::server::ServerLevel>,
    /// How loaded the client itself was, and whether that limited the measurement (absent
    /// in results made before it was measured, and in imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<crate::engine::client_load::ClientLoad>,
    /// Whether a closed-loop level's clients sent in lockstep (absent for open loops, one
    /// client, too few requests, and results made before it was checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<crate::metrics::PhaseCheck>,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunResult {
    pub schema_version: u32,
    pub tool: ToolInfo,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub interrupted: bool,
    pub settings: RunSettings,
    pub adapter: PluginRef,
    pub slo_policy: Option<PluginRef>,
    pub levels: Vec<LevelResult>,
    /// What `recommend` concluded from these levels (its probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<crate::recommend::Recommendation>,
    /// The local GPUs sampled while the run went, when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuTelemetry>,
    /// The server's metrics scraped while the run went, when they were (`--server-metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<ServerTelemetry>,
    /// How this run was merged from shards (`merge`): which, how each level, their skew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<crate::merge::MergeReport>,
    /// A staged run (`--stages`, `--rate-stages`) over time: planned load, in flight, sent,
    /// completed, tokens and TTFT per interval (absent for level runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_series: Option<crate::metrics::LoadSeries>,
}

/// The server's Prometheus metrics scraped during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServerTelemetry {
    pub url: String,
    /// The server software its metrics name (`vLLM`, `SGLang`, `llama.cpp`, `TGI`, `Triton`).
    pub server: Option<String>,
    pub interval_s: f64,
    /// Every scrape, failed ones with their reason; times are seconds from the first.
    pub scrapes: Vec<crate::telemetry::server::Scrape>,
    /// Each level's start, seconds on the scrapes' clock.
    pub level_offsets_s: Vec<f64>,
}

/// GPU samples taken during a run (NVML on the machine running the client).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GpuTelemetry {
    /// `nvml`.
    pub source: String,
    pub interval_s: f64,
    /// Each GPU's name, by index, as NVML gave it when sampling began.
    pub names: Vec<String>,
    /// Sample times are seconds from when sampling began; `level_offsets_s` places each level.
    pub samples: Vec<crate::gpu::Sample>,
    /// Each level's start, seconds on the samples' clock.
    pub level_offsets_s: Vec<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("result file is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("result file has no schema_version: not an llm-loadtest result")]
    NoVersion,
    #[error(
        "result file has schema version {found}; this llm-loadtest reads version {supported}. \
         Use a matching release to read it"
    )]
    Version { found: u64, supported: u32 },
}

impl RunResult {
    /// Read a result, refusing other schema versions instead of misreading them.
    pub fn from_json(text: &str) -> Result<RunResult, ResultError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or(ResultError::NoVersion)?;
        if found != u64::from(SCHEMA_VERSION) {
            return Err(ResultError::Version {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(serde_json::from_value(value)?)
    }
}

/// The JSON Schema of [`RunResult`], as committed in `schemas/`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RunResult)).unwrap_or_default()
}

/// A wall-clock instant as RFC 3339 UTC with microsecond precision.
pub fn rfc3339_micros(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// Now, as RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
