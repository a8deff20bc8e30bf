//! What changes while runs go: a run's progress over a WebSocket, the server's counters as
//! Prometheus text, and its health.
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::Api;
use super::auth::WS_PROTOCOL;
use super::error::ApiError;
use super::jobs::{Follower, Job, JobStatus};
use super::keys::Role;

/// The server answers.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    pub version: &'static str,
}

/// `GET /health`: no key needed; says nothing but that the server answers.
pub async fn health() -> Response {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
    .into_response()
}

/// `WS /ws/run/{id}`: the job as it stands (`{"event": "snapshot", ...}`), then each
/// progress event (`{"event": "progress", "id": ..., "kind": "level-started" | "tick" |
/// "level-finished", ...the event's fields}`), then `{"event": "finished", "status": ...,
/// "result": ...}`, and the socket closes.
pub async fn ws(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // The key is checked before the handshake is: a request without one learns nothing.
    api.gate.check(&headers, Role::Viewer, "watching runs")?;
    let job = api.jobs.get(&id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "{id}` among this server's runs (a saved run's result is at \
             /api/v1/benchmark/result/{id}"
        ))
    })?;
    let upgrade = upgrade.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(upgrade
        .protocols([WS_PROTOCOL])
        .on_upgrade(move |socket| api.sockets.track_future(follow(socket, job))))
}

async fn follow(mut socket: WebSocket, job: Arc<Job>) {
    let mut frames = Follower::new(job);
    loop {
        tokio::select! {
            f = frames.next() => match f {
                Some(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Viewer, "reading metrics")?;
    let c = &api.jobs.counters;
    let by_status = api.jobs.by_status();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP llm_loadtest_runs Runs this server holds, by status.\n\
         # TYPE llm_loadtest_runs gauge"
    );
    for s in JobStatus::ALL {
        let n = by_status.get(s.name()).copied().unwrap_or(0);
        let _ = writeln!(out, "llm_loadtest_runs{{status=\"{}\"}} {n}", s.name());
    }
    let counter = |out: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        &mut out,
        "llm_loadtest_runs_submitted_total",
        "Runs submitted since the server started.",
        c.submitted.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "llm_loadtest_requests_sent_total",
        "Requests the runs have sent (warm-up included), counted as they go.",
        c.requests_sent.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "llm_loadtest_requests_completed_total",
        "Measured requests that succeeded, counted when a run ends.",
        c.requests_completed.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP llm_loadtest_request_errors_total Measured requests that failed, by class, \
         counted when a run ends.\n# TYPE llm_loadtest_request_errors_total counter"
    );
    for (class, n) in c.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(
            out,
            "llm_loadtest_request_errors_total{{class=\"{class}\"}} {n}"
        );
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
