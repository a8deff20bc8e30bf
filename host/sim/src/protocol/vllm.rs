//! vLLM's operational routes: `GET /metrics` (Prometheus text), `GET /version`, `GET /health`.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::app::App;
use crate::config::Timing;
use crate::protocol::json_response;

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`: the vLLM gauges and counters a load tester scrapes, named as vLLM names
/// them. In fixed mode every stream runs at once, so `running` is the streams in flight and
/// nothing waits.
pub(crate) async fn metrics(State(app): State<App>) -> Response {
    let s = &app.stats;
    let (running, waiting, kv) = match app.timing {
        Timing::Batching(p) => (
            s.running.load(Relaxed),
            s.queue_depth.load(Relaxed),
            s.kv_tokens_used.load(Relaxed) as f64 / p.kv_tokens as f64,
        ),
        Timing::Fixed { .. } => (s.active_streams.load(Relaxed), 0, 0.0),
    };
    let labels = format!("engine=\"0\",model_name=\"{}\"", label(&app.config.model));
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP vllm:{name} {help}");
        let _ = writeln!(out, "# TYPE vllm:{name} {kind}");
        for (extra, value) in samples {
            let _ = writeln!(out, "vllm:{name}{{{labels}{extra}}} {value:?}");
        }
    };
    metric(
        "num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        &[("", running as f64)],
    );
    metric(
        "num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        &[("", waiting as f64)],
    );
    metric(
        "kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        &[("", kv)],
    );
    metric(
        "prompt_tokens_total",
        "counter",
        "Number of prefill tokens processed.",
        &[("", s.prompt_tokens.load(Relaxed) as f64)],
    );
    metric(
        "generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        &[("", s.tokens_generated.load(Relaxed) as f64)],
    );
    metric(
        "request_success_total",
        "counter",
        "Count of successfully processed requests.",
        &[
            (
                ",finished_reason=\"stop\"",
                s.finished_stop.load(Relaxed) as f64,
            ),
            (
                ",finished_reason=\"length\"",
                s.finished_length.load(Relaxed) as f64,
            ),
        ],
    );
    for (name, help, h) in [
        (
            "time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            &s.ttft,
        ),
        (
            "inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            &s.itl,
        ),
    ] {
        let (buckets, sum) = h.cumulative();
        let _ = writeln!(out, "# HELP vllm:{name} {help}");
        let _ = writeln!(out, "# TYPE vllm:{name} histogram");
        for (le, n) in &buckets {
            let le = if le.is_finite() {
                format!("{le:?}")
            } else {
                "+Inf".to_owned()
            };
            let _ = writeln!(out, "vllm:{name}_bucket{{{labels},le=\"{le}\"}} {n}.0");
        }
        let count = buckets.last().map_or(0, |b| b.1);
        let _ = writeln!(out, "vllm:{name}_sum{{{labels}}} {sum:?}");
        let _ = writeln!(out, "vllm:{name}_count{{{labels}}} {count}.0");
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /version`.
pub(crate) async fn version() -> Response {
    json_response(
        StatusCode::OK,
        serde_json::json!({"version": concat!(env!("CARGO_PKG_VERSION"), "-sim")}).to_string(),
    )
}

/// `GET /health` (vLLM and TGI): 200 with an empty body while serving.
pub(crate) async fn health() -> StatusCode {
    StatusCode::OK
}
