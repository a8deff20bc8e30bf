//! Reading vLLM's `bench serve --save-result` JSON (one level per file) into
//! a [`RunResult`], so vLLM's runs compare with ours. Our own
//! `--output-format vllm` files have the same keys and read back the same.
//!
//! The per-request arrays (`ttfts`, `itls`, `input_lens`, `output_lens`,
//! and `errors` when present) are required: every distribution is computed
//! from them with the same percentile method vLLM uses. Recent vLLM writes
//! them only with `--save-detailed`; without them a file holds only the
//! percentiles it was asked for, not enough to fill a result honestly.
//! Counts, duration and throughputs are taken from the file as vLLM
//! reported them (vLLM does not save when each request was sent).
use serde_json::Value;

use super::{LevelResult, PluginRef, RunResult, RunSettings, SCHEMA_VERSION, ToolInfo};
use crate::metrics::histogram::LevelHistograms;
use crate::metrics::{
    Distribution, ErrorClass, Goodput, LevelSummary, RequestError, RequestRecord,
};
use crate::plan::{Bound, Load, Warmup};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file} is not JSON: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error("{file} is not a vLLM bench serve result: {reason}")]
    NotVllm { file: String, reason: String },
    #[error(
        "{file} has no per-request `{key}` array: rerun `vllm bench serve` with \
         --save-detailed (our --output-format vllm always writes it)"
    )]
    NoDetail { file: String, key: String },
    #[error("{file}: `{key}` {reason}")]
    Shape {
        file: String,
        key: String,
        reason: String,
    },
}

/// A vLLM file read into our shape.
#[derive(Debug, Clone)]
pub struct Imported {
    pub result: RunResult,
    pub records: Vec<RequestRecord>,
    /// Things a reader should know (figures that disagree, values not reported).
    pub notes: Vec<String>,
}

/// Whether `v` looks like a vLLM result rather than one of ours.
pub fn looks_like_vllm(v: &Value) -> bool {
    v.get("schema_version").is_none()
        && (v.get("ttfts").is_some() || v.get("mean_ttft_ms").is_some())
}

struct Reader<'a> {
    file: &'a str,
    v: &'a Value,
}

impl Reader<'_> {
    fn shape(&self, key: &str, reason: impl Into<String>) -> ImportError {
        ImportError::Shape {
            file: self.file.to_string(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn f64(&self, key: &str) -> Option<f64> {
        self.v.get(key).and_then(Value::as_f64)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.v.get(key).and_then(Value::as_str)
    }

    fn array(&self, key: &str) -> Result<&Vec<Value>, ImportError> {
        match self.v.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(self.shape(key, "is not an array")),
            None => Err(ImportError::NoDetail {
                file: self.file.to_string(),
                key: key.to_string(),
            }),
        }
    }

    fn numbers(&self, key: &str) -> Result<Vec<f64>, ImportError> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_f64()
                    .ok_or_else(|| self.shape(key, format!("item {i} is not a number")))
            })
            .collect()
    }
}

/// The class of a vLLM error string: ours are written `class: message`;
/// vLLM's own (HTTP reasons, tracebacks) are counted as stream errors.
fn classify(message: &str) -> RequestError {
    for class in ErrorClass::ALL {
        if let Some(rest) = message.strip_prefix(&format!("{}: ", class.name())) {
            return RequestError {
                class,
                message: rest.to_string(),
                collateral: false,
            };
        }
    }
    RequestError {
        class: ErrorClass::StreamError,
        message: message.to_string(),
        collateral: false,
    }
}

/// vLLM's `YYYYMMDD-HHMMSS` as RFC 3339 (vLLM writes local time without a
/// zone; it is read as UTC).
fn date_rfc3339(date: &str) -> Option<String> {
    let d: String = date.chars().filter(char::is_ascii_digit).collect();
    if d.len() != 14 {
        return None;
    }
    let s = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[8..10],
        &d[10..12],
        &d[12..14]
    );
    humantime::parse_rfc3339(&s).ok().map(|_| s)
}

fn load_of(r: &Reader<'_>) -> Result<Load, ImportError> {
    let rate = match r.v.get("request_rate") {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("inf") => f64::INFINITY,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::INFINITY),
        None | Some(Value::Null) => f64::INFINITY,
        Some(_) => return Err(r.shape("request_rate", "is neither a number nor \"inf\"")),
    };
    let max_concurrency =
        r.v.get("max_concurrency")
            .and_then(Value::as_u64)
            .map(|c| c.min(u64::from(u32::MAX)) as u32);
    Ok(match (rate.is_infinite(), max_concurrency) {
        // Everything at once, capped at c in flight: a closed loop of c.
        (true, Some(c)) => Load::Concurrency { concurrency: c },
        _ => Load::Rate {
            rate,
            burstiness: r.f64("burstiness").unwrap_or(1.0),
            max_concurrency,
        },
    })
}

/// Read one vLLM result file. `file` names it in messages and in the result.
pub fn import(text: &str, file: &str, tags: &[String]) -> Result<Imported, ImportError> {
    let v: Value = serde_json::from_str(text).map_err(|source| ImportError::Json {
        file: file.to_string(),
        source,
    })?;
    if !v.is_object() || !looks_like_vllm(&v) {
        return Err(ImportError::NotVllm {
            file: file.to_string(),
            reason: "no `ttfts` or `mean_ttft_ms` key".to_string(),
        });
    }
    let r = Reader { file, v: &v };
    let ttfts = r.numbers("ttfts")?;
    let input_lens = r.numbers("input_lens")?;
    let output_lens = r.numbers("output_lens")?;
    let itls: Vec<Vec<f64>> = r
        .array("itls")?
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_array()
                .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
                .ok_or_else(|| r.shape("itls", format!("item {i} is not a list of numbers")))
        })
        .collect::<Result<_, _>>()?;
    let errors: Vec<String> = match v.get("errors") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| e.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => Vec::new(),
    };
    let n = ttfts.len();
    for (key, len) in [
        ("input_lens", input_lens.len()),
        ("output_lens", output_lens.len()),
        ("itls", itls.len()),
    ] {
        if len != n {
            return Err(r.shape(key, format!("has {len} items but `ttfts` has {n}")));
        }
    }
    if !errors.is_empty() && errors.len() != n {
        return Err(r.shape(
            "errors",
            format!("has {} items but `ttfts` has {n}", errors.len()),
        ));
    }

    let records: Vec<RequestRecord> = (0..n)
        .map(|i| {
            let error = errors.get(i).filter(|e| !e.is_empty()).map(|e| classify(e));
            let mut rec = RequestRecord {
                index: i as u64,
                input_tokens: input_lens[i].max(0.0) as u32,
                output_tokens: output_lens[i].max(0.0) as u32,
                ..Default::default()
            };
            if error.is_none() {
                let ttft = ttfts[i] * 1e3;
                let itl: Vec<f64> = itls[i].iter().map(|g| g * 1e3).collect();
                let e2el = ttft + itl.iter().sum::<f64>();
                rec.ttft_ms = Some(ttft);
                rec.e2el_ms = Some(e2el);
                rec.latency_ms = e2el;
                rec.content_events = itl.len() as u32 + 1;
                rec.itl_ms = itl;
            }
            rec.error = error;
            rec
        })
        .collect();

    let mut notes = Vec::new();
    let mut summary = LevelSummary::compute(&records, None);
    let duration = r.f64("duration").unwrap_or(0.0);
    let completed = summary.completed;
    if let Some(c) = r.f64("completed")
        && c as u64 != completed
    {
        notes.push(format!(
            "the file reports {c} completed requests; its per-request arrays hold {completed}"
        ));
    }
    summary.duration_s = duration;
    summary.total_input_tokens = r
        .f64("total_input_tokens")
        .map_or(summary.total_input_tokens, |t| t as u64);
    summary.total_output_tokens = r
        .f64("total_output_tokens")
        .map_or(summary.total_output_tokens, |t| t as u64);
    let per_s = |x: f64| if duration > 0.0 { x / duration } else { 0.0 };
    summary.request_throughput = r
        .f64("request_throughput")
        .unwrap_or(per_s(completed as f64));
    summary.output_throughput = r
        .f64("output_throughput")
        .unwrap_or(per_s(summary.total_output_tokens as f64));
    summary.total_token_throughput = r.f64("total_token_throughput").unwrap_or(per_s(
        (summary.total_input_tokens + summary.total_output_tokens) as f64,
    ));
    // Without send times these cannot be derived from the records.
    summary.peak_concurrency = r.f64("max_concurrent_requests").unwrap_or(0.0) as u64;
    summary.peak_output_tokens_per_s = r.f64("max_output_tokens_per_s").unwrap_or(0.0);
    if r.f64("max_concurrent_requests").is_none() {
        notes.push("peak concurrency and peak tokens/s are not in the file".to_string());
    }
    summary.queue_ms = Distribution::default();
    if let Some(g) = r.f64("request_goodput") {
        let good = (g * duration).round().max(0.0) as u64;
        summary.goodput = Some(Goodput {
            objectives: Vec::new(),
            good,
            goodput_rps: g,
            attainment_pct: if summary.requests > 0 {
                100.0 * good as f64 / summary.requests as f64
            } else {
                0.0
            },
            violations: Default::default(),
        });
        notes.push("vLLM does not save its goodput objectives; only the rate is known".into());
    }
    for (key, d) in [
        ("mean_ttft_ms", &summary.ttft_ms),
        ("mean_itl_ms", &summary.itl_ms),
    ] {
        if let Some(file_mean) = r.f64(key)
            && d.count > 0
            && (file_mean - d.mean).abs() > 0.01 * file_mean.abs().max(1e-9)
        {
            notes.push(format!(
                "the file's {key} is {file_mean:.3}; its per-request values give {:.3}",
                d.mean
            ));
        }
    }

    let mut hist = LevelHistograms::default();
    for rec in &records {
        hist.record(rec);
    }
    let load = load_of(&r)?;
    let started_at = r
        .str("date")
        .and_then(date_rfc3339)
        .unwrap_or_else(super::now_rfc3339);
    let finished_at = humantime::parse_rfc3339(&started_at)
        .ok()
        .map(|t| {
            humantime::format_rfc3339_millis(
                t + std::time::Duration::from_secs_f64(duration.max(0.0)),
            )
            .to_string()
        })
        .unwrap_or_else(|| started_at.clone());
    let backend = r
        .str("backend")
        .or(r.str("endpoint_type"))
        .unwrap_or("vllm")
        .to_string();
    let endpoint =
        if backend.contains("chat") || r.str("endpoint_type").is_some_and(|e| e.contains("chat")) {
            "chat"
        } else {
            "completions"
        };
    let mut all_tags = vec!["imported".to_string()];
    all_tags.extend(tags.iter().cloned());
    let level = LevelResult {
        label: load.label(),
        load,
        bound: Bound::Requests(n as u64),
        warmup: Warmup::None,
        interrupted: false,
        wall_s: duration,
        started_at: None,
        summary,
        histograms: hist.serialize(),
        requests: None,
        gpu: None,
        server: None,
        client: None,
        phase: None,
    };
    let result = RunResult {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo {
            name: "vllm bench serve".to_string(),
            version: r.str("vllm_version").unwrap_or("unknown").to_string(),
        },
        started_at,
        finished_at,
        interrupted: false,
        settings: RunSettings {
            // vLLM's result names no server; `import --server` sets it.
            server: "unknown".to_string(),
            model: r.str("model_id").unwrap_or_default().to_string(),
            endpoint: endpoint.to_string(),
            dataset: format!("imported from {file}"),
            tokenizer: r.str("tokenizer_id").unwrap_or_default().to_string(),
            stream: true,
            // vLLM's own client times every chunk with a choice; a file we exported says
            // how its run timed them.
            metric_mode: match r.str("llm_loadtest_metric_mode") {
                Some("content") => crate::metrics::MetricMode::Content,
                _ => crate::metrics::MetricMode::Vllm,
            },
            max_tokens: None,
            min_tokens: None,
            ignore_eos: false,
            temperature: None,
            timeout_s: 0.0,
            seed: 0,
            header_names: Vec::new(),
            api_key_set: false,
            tags: all_tags,
            unsupported: Vec::new(),
            served_model: None,
            server_version: None,
            tls: None,
            arrival_times: None,
            shard: None,
            ramp_up_s: None,
            slo: None,
        },
        adapter: PluginRef {
            name: backend,
            version: String::new(),
            wit_version: String::new(),
            sha256: {
                use sha2::Digest as _;
                hex::encode(sha2::Sha256::digest(text.as_bytes()))
            },
            source: format!("imported from {file}"),
        },
        slo_policy: None,
        levels: vec![level],
        recommendation: None,
        gpu: None,
        server_metrics: None,
        merge: None,
        load_series: None,
    };
    Ok(Imported {
        result,
        records,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vllm_file() -> Value {
        serde_json::json!({
            "date": "20250314-101502",
            "backend": "vllm",
            "model_id": "meta-llama/Llama-3.1-8B-Instruct",
            "tokenizer_id": "meta-llama/Llama-3.1-8B-Instruct",
            "num_prompts": 3,
            "request_rate": "inf",
            "burstiness": 1.0,
            "max_concurrency": 2,
            "duration": 2.0,
            "completed": 2,
            "total_input_tokens": 30,
            "total_output_tokens": 8,
            "request_throughput": 1.0,
            "output_throughput": 4.0,
            "total_token_throughput": 19.0,
            "input_lens": [10, 10, 10],
            "output_lens": [4, 4, 0],
            "ttfts": [0.05, 0.07, 0.0],
            "itls": [[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], []],
            "generated_texts": ["", "", ""],
            "errors": ["", "", "Internal Server Error"],
            "mean_ttft_ms": 60.0,
            "median_ttft_ms": 60.0,
            "p99_ttft_ms": 69.8
        })
    }

    #[test]
    fn reads_vllm_keys_into_one_level() {
        let text = vllm_file().to_string();
        let imp = import(&text, "bench.json", &["base".into()]).unwrap();
        let r = &imp.result;
        assert_eq!(r.levels.len(), 1);
        let l = &r.levels[0];
        assert_eq!(l.label, "c=2");
        assert_eq!(l.summary.completed, 2);
        assert_eq!(l.summary.failed, 1);
        assert_eq!(l.summary.duration_s, 2.0);
        assert!((l.summary.ttft_ms.p50 - 60.0).abs() < 1e-9);
        assert!(
            (l.summary.ttft_ms.p99 - 69.8).abs() < 1e-9,
            "numpy-linear like vLLM"
        );
        assert!((l.summary.e2el_ms.max - 130.0).abs() < 1e-9);
        assert_eq!(l.summary.errors[&ErrorClass::StreamError].count, 1);
        assert_eq!(r.started_at, "2025-03-14T10:15:02Z");
        assert_eq!(r.settings.model, "meta-llama/Llama-3.1-8B-Instruct");
        assert_eq!(r.settings.tags, vec!["imported", "base"]);
        assert_eq!(imp.records.len(), 3);
        assert_eq!(imp.records[1].itl_ms.len(), 3);
        assert!(imp.notes.iter().any(|n| n.contains("peak concurrency")));
        let h = LevelHistograms::deserialize(&l.histograms).unwrap();
        assert_eq!(h.ttft.len(), 2);
    }

    #[test]
    fn refuses_what_it_cannot_read_honestly() {
        let mut v = vllm_file();
        v.as_object_mut().unwrap().remove("itls");
        let err = import(&v.to_string(), "f.json", &[]).unwrap_err();
        assert!(err.to_string().contains("--save-detailed"), "{err}");
        let mut v = vllm_file();
        v["output_lens"] = serde_json::json!([1]);
        assert!(matches!(
            import(&v.to_string(), "f.json", &[]),
            Err(ImportError::Shape { .. })
        ));
        assert!(matches!(
            import("{\"schema_version\": 1}", "f.json", &[]),
            Err(ImportError::NotVllm { .. })
        ));
        assert!(matches!(
            import("nope", "f.json", &[]),
            Err(ImportError::Json { .. })
        ));
    }

    #[test]
    fn open_loop_rates_stay_rates() {
        let mut v = vllm_file();
        v["request_rate"] = serde_json::json!(4.0);
        v["max_concurrency"] = Value::Null;
        let imp = import(&v.to_string(), "f.json", &[]).unwrap();
        assert_eq!(imp.result.levels[0].label, "rate=4");
        assert_eq!(
            classify("timeout: took too long").class,
            ErrorClass::Timeout
        );
    }
}
