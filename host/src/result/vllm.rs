//! The JSON vLLM's `bench serve --save-result` writes, one object per level,
//! so dashboards built on vLLM's output read ours unchanged.
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::{LevelResult, RunResult};
use crate::metrics::{Distribution, RequestRecord};
use crate::plan::{Load, StageUnit};

fn put_distribution(out: &mut Map<String, Value>, name: &str, d: &Distribution) {
    out.insert(format!("mean_{name}_ms"), json!(d.mean));
    out.insert(format!("median_{name}_ms"), json!(d.p50));
    out.insert(format!("std_{name}_ms"), json!(d.std));
    for (p, v) in [
        ("50", d.p50),
        ("90", d.p90),
        ("95", d.p95),
        ("99", d.p99),
        ("99.9", d.p99_9),
    ] {
        out.insert(format!("p{p}_{name}_ms"), json!(v));
    }
}

/// One level in vLLM's shape. `records` are the level's requests (warm-up
/// excluded here, as vLLM does not report its warm-up).
pub fn level_json(run: &RunResult, level: &LevelResult, records: &[RequestRecord]) -> Value {
    let s = &level.summary;
    let measured: Vec<&RequestRecord> = records.iter().filter(|r| !r.warmup).collect();
    let (rate, burstiness, max_concurrency) = match level.load {
        Load::Concurrency { concurrency } => (json!("inf"), json!(1.0), json!(concurrency)),
        // A stage's load moves; vLLM's format holds one figure: the peak clients, or the mean
        // rate over the stage.
        Load::Stage {
            unit: StageUnit::Clients,
            from,
            to,
            ..
        } => (json!("inf"), json!(1.0), json!(from.max(to).ceil())),
        Load::Stage {
            from,
            to,
            burstiness,
            max_concurrency,
            ..
        } => (
            json!((from + to) / 2.0),
            json!(burstiness),
            json!(max_concurrency),
        ),
        Load::Rate {
            rate,
            burstiness,
            max_concurrency,
        } => (
            if rate.is_infinite() {
                json!("inf")
            } else {
                json!(rate)
            },
            json!(burstiness),
            json!(max_concurrency),
        ),
    };
    let mut out = Map::new();
    let date = run
        .started_at
        .get(..19)
        .unwrap_or(&run.started_at)
        .replace(['-', ':'], "")
        .replace('T', "-");
    out.insert("date".into(), json!(date));
    out.insert("backend".into(), json!(run.adapter.name));
    out.insert("endpoint_type".into(), json!(run.adapter.name));
    out.insert("label".into(), json!(level.label));
    out.insert("model_id".into(), json!(run.settings.model));
    out.insert("tokenizer_id".into(), json!(run.settings.tokenizer));
    out.insert("num_prompts".into(), json!(s.requests));
    out.insert("request_rate".into(), rate);
    out.insert("burstiness".into(), burstiness);
    out.insert("max_concurrency".into(), max_concurrency);
    out.insert("duration".into(), json!(s.duration_s));
    out.insert("completed".into(), json!(s.completed));
    out.insert("failed".into(), json!(s.failed));
    out.insert("total_input_tokens".into(), json!(s.total_input_tokens));
    out.insert("total_output_tokens".into(), json!(s.total_output_tokens));
    out.insert("request_throughput".into(), json!(s.request_throughput));
    out.insert(
        "request_goodput".into(),
        s.goodput
            .as_ref()
            .map_or(Value::Null, |g| json!(g.goodput_rps)),
    );
    out.insert("output_throughput".into(), json!(s.output_throughput));
    out.insert(
        "total_token_throughput".into(),
        json!(s.total_token_throughput),
    );
    out.insert(
        "max_output_tokens_per_s".into(),
        json!(s.peak_output_tokens_per_s),
    );
    out.insert("max_concurrent_requests".into(), json!(s.peak_concurrency));
    let ok = |r: &RequestRecord| r.succeeded();
    out.insert(
        "input_lens".into(),
        json!(
            measured
                .iter()
                .map(|r| r.counted_input_tokens())
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "output_lens".into(),
        json!(
            measured
                .iter()
                .map(|r| if ok(r) { r.output_tokens } else { 0 })
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "ttfts".into(),
        json!(
            measured
                .iter()
                .map(|r| r.ttft_ms.filter(|_| ok(r)).unwrap_or(0.0) / 1e3)
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "itls".into(),
        json!(
            measured
                .iter()
                .map(|r| r.itl_ms.iter().map(|v| v / 1e3).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        ),
    );
    // As vLLM 0.32 writes them, in seconds: whole-request latency, send time (vLLM's is a
    // perf_counter reading, ours the offset from the level's start: only differences between
    // them mean anything in either), and the wait for a concurrency slot.
    out.insert(
        "latencies".into(),
        json!(
            measured
                .iter()
                .map(|r| if ok(r) { r.latency_ms / 1e3 } else { 0.0 })
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "start_times".into(),
        json!(measured.iter().map(|r| r.send_s).collect::<Vec<_>>()),
    );
    out.insert(
        "queue_times".into(),
        json!(
            measured
                .iter()
                .map(|r| r.queue_ms / 1e3)
                .collect::<Vec<_>>()
        ),
    );
    // Not vLLM's: which chunks were arrivals, so an import of this file knows the figures
    // were not timed the vLLM way when they were not.
    out.insert(
        "llm_loadtest_metric_mode".into(),
        json!(run.settings.metric_mode.name()),
    );
    // Generated text is not kept (it can be large and sensitive).
    out.insert("generated_texts".into(), json!(vec![""; measured.len()]));
    out.insert(
        "errors".into(),
        json!(
            measured
                .iter()
                .map(|r| r
                    .error
                    .as_ref()
                    .map_or(String::new(), |e| format!("{}: {}", e.class, e.message)))
                .collect::<Vec<_>>()
        ),
    );
    put_distribution(&mut out, "ttft", &s.ttft_ms);
    put_distribution(&mut out, "tpot", &s.tpot_ms);
    put_distribution(&mut out, "itl", &s.itl_ms);
    put_distribution(&mut out, "e2el", &s.e2el_ms);
    Value::Object(out)
}

/// Where level `i` of `of` goes: `out.json` itself for a single level, else
/// `out-1-c8.json` for level 1 labelled `c=8` (vLLM's format holds one level).
pub fn level_path(path: &Path, label: &str, i: usize, of: usize) -> PathBuf {
    if of == 1 {
        return path.to_path_buf();
    }
    let clean: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!("{stem}-{i}-{clean}{ext}"))
}

/// Write every level of `run` in vLLM's shape, one file per level; returns
/// the files written. `records(i)` gives level `i`'s requests.
pub fn write_levels<'a>(
    path: &Path,
    run: &RunResult,
    records: impl Fn(usize) -> &'a [RequestRecord],
) -> std::io::Result<Vec<PathBuf>> {
    let levels = &run.levels;
    let mut written = Vec::with_capacity(levels.len());
    for (i, level) in levels.iter().enumerate() {
        let file = level_path(path, &level.label, i, levels.len());
        let v = level_json(run, level, records(i));
        let text = serde_json::to_string_pretty(&v).map_err(std::io::Error::other)? + "\n";
        std::fs::write(&file, text)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
        written.push(file);
    }
    Ok(written)
}
