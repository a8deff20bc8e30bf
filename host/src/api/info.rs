//! `GET /api/v1/info?server=URL`: what `info` prints as JSON — the server's version and
//! models as it states them, and the machine the service runs on (its CPUs, memory and the
//! GPUs NVML lists there). Answered at once rather than queued as a job: it is a handful of
//! GETs, each bounded by a few seconds, and loads nothing.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Api;
use super::error::ApiError;
use super::guard;
use super::keys::Role;
use crate::engine::{Target, new_client};
use crate::info;

#[derive(Debug, Deserialize)]
pub struct InfoQuery {
    pub server: Option<String>,
}

pub async fn info(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<InfoQuery>,
) -> Result<Response, ApiError> {
    // It sends requests to a server: a runner's to ask for, as a run is.
    api.gate
        .check(&headers, Role::Runner, "asking servers about themselves")?;
    let refuse = |reason: String| ApiError::invalid("server", reason);
    let url = q
        .server
        .ok_or_else(|| refuse("give the server's base URL: ?server=http://...".into()))?;
    guard::check_url("server", &url, &api.limits.targets)?;
    let key = super::runs::target_key(&headers)?;
    let target = Target::new(&url, &[], key.as_deref()).map_err(|e| refuse(e.to_string()))?;
    let client = new_client(&target, 1).map_err(|e| refuse(e.to_string()))?;
    let server = info::server::gather(&client, &target).await;
    let host = tokio::task::spawn_blocking(info::host::gather)
        .await
        .map_err(|e| ApiError::Internal(format!("reading this machine: {e}")))?;
    Ok(Json(info::Info { server, host }).into_response())
}
