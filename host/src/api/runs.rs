//! Runs over HTTP: submit, status, cancel, delete.
//!
//! A submission is `run`'s settings as JSON, under the names of the TOML scenario
//! (`{"server": "...", "concurrency": [1, 8], "num-prompts": 200}`), read by the same types
//! and validated by the same code as the command line, then held to the service's limits
//! (see [`super::guard`]). Whatever is refused is answered with 422 and the setting's name.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::jobs::{JobView, Work};

use super::Api;
use super::error::ApiError;
use super::guard::{self, Refusal};
use super::keys::Role;
use crate::cli::recommend::RecommendArgs;
use crate::cli::run::RunArgs;
use crate::store::{self, StoreError};

/// Reads a submission, naming the setting that is wrong.
pub fn parse_args(body: &[u8]) -> Result<RunArgs, ApiError> {
    parse_body(body)
}

/// Reads a JSON body, naming the field that is wrong (422), or saying it is not JSON (400).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let args: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        ) {
            return ApiError::BadRequest(format!("the body is not valid JSON: {inner}"));
        }
        let message = inner.to_string();
        // The path names an unknown field itself, but a missing one by its parent.
        let name = |prefix: &str| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
        };
        let field = match (
            name("unknown field `"),
            name("missing field `"),
            path.as_str(),
        ) {
            (Some(unknown), _, ".") => unknown.to_string(),
            (_, Some(missing), ".") => missing.to_string(),
            (_, Some(missing), parent) => format!("{parent}.{missing}"),
            (_, None, ".") => "body".into(),
            _ => path,
        };
        ApiError::Invalid(Refusal {
            field,
            reason: message,
        })
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(args)
}

/// A usage message of `run` (`--duration must be above zero`) as a refusal of that setting.
fn usage_refusal(message: &str) -> Refusal {
    let field = message
        .split("--")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "body".into());
    Refusal {
        field,
        reason: message.to_string(),
    }
}

/// Whether the body is declared JSON. A form or `text/plain` post needs no CORS preflight:
/// requiring JSON keeps other web pages from posting through a user's browser.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /api/v1/benchmark/run`: 202 with the queued job and its `Location`.
pub async fn submit(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = api.gate.check(&headers, Role::Runner, "starting runs")?;
    if !is_json(&headers) {
        return Err(ApiError::NotJson);
    }
    let mut args = parse_args(&body)?;
    args.api_key = target_key(&headers)?;
    guard::check_args(&args)?;
    resolve_plugins(&api, &mut args)?;
    let spec = args.to_spec().map_err(|e| usage_refusal(&e.0))?;
    guard::check_spec(&spec, &api.limits)?;
    Ok(accepted(&api, Work::Run(Box::new(spec)), &caller.key_id))
}

/// The load target's own API key, sent beside the settings (never in them, so never stored
/// with a result): `LLM-Loadtest-Target-Key`.
pub(super) fn target_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(crate::remote::TARGET_KEY_HEADER)
        .map(|v| {
            v.to_str().map(str::to_string).map_err(|_| {
                ApiError::BadRequest(format!(
                    "{} is not a valid key",
                    crate::remote::TARGET_KEY_HEADER
                ))
            })
        })
        .transpose()
}

/// Queues `work`: 202 with the job and its `Location`.
fn accepted(api: &Api, work: Work, key_id: &str) -> Response {
    let job = api.jobs.submit(work, key_id);
    let view = job.view();
    tracing::info!(run = %view.id, work = view.work, key = %key_id, "submitted");
    let location = format!("/api/v1/benchmark/run/{}", view.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response()
}

/// Settings of `recommend` itself; any other a message names is one of `run`'s, under `run`.
const SEARCH_FIELDS: [&str; 8] = [
    "peak-concurrency",
    "goodput-target",
    "gpus-per-replica",
    "gpu-type",
    "cost-per-gpu-hour",
    "max-duration",
    "max-probe-concurrency",
    "policy",
];

/// `POST /api/v1/recommend`: a `recommend` search as a job, followed as a run is (status,
/// WebSocket, cancel; each probe a level) and saved as one run carrying the recommendation.
pub async fn recommend(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = api
        .gate
        .check(&headers, Role::Runner, "starting searches")?;
    if !is_json(&headers) {
        return Err(ApiError::NotJson);
    }
    let mut args: RecommendArgs = parse_body(&body)?;
    args.run.api_key = target_key(&headers)?;
    // Unasked, the search's time budget is the command line's default or this service's
    // run-time limit, whichever is shorter; asked for, it is held to the limit.
    if args.max_duration.is_none() {
        let budget = crate::cli::recommend::DEFAULT_BUDGET.min(api.limits.max_run_time);
        args.max_duration = Some(humantime::format_duration(budget).to_string());
    }
    let under_run = |r: Refusal| Refusal {
        field: format!("run.{}", r.field),
        reason: r.reason,
    };
    guard::check_args(&args.run).map_err(under_run)?;
    resolve_plugins(&api, &mut args.run).map_err(|e| match e {
        ApiError::Invalid(r) => ApiError::Invalid(under_run(r)),
        other => other,
    })?;
    if let Some(p) = &args.policy {
        args.policy = Some(api.plugins.resolve(
            "policy",
            p,
            crate::plugin::PluginKind::Recommend,
        )?);
    }
    let (plan, _) = args.plan().map_err(|m| {
        let r = usage_refusal(&m);
        match r.field.as_str() {
            "policy-option" => Refusal {
                field: "policy-options".into(),
                reason: r.reason,
            },
            f if SEARCH_FIELDS.contains(&f) => r,
            _ => under_run(r),
        }
    })?;
    guard::check_search(&plan, &api.limits)?;
    Ok(accepted(
        &api,
        Work::Recommend(Box::new(plan)),
        &caller.key_id,
    ))
}

/// Names of uploaded plugins as the files the runtime loads (built-in names stay).
pub fn resolve_plugins(api: &Api, args: &mut RunArgs) -> Result<(), ApiError> {
    use crate::plugin::PluginKind;
    if let Some(a) = &args.adapter {
        args.adapter = Some(api.plugins.resolve("adapter", a, PluginKind::Adapter)?);
    }
    if let Some(p) = &args.slo_policy {
        args.slo_policy = Some(api.plugins.resolve("slo-policy", p, PluginKind::Slo)?);
    }
    Ok(())
}

/// `GET /api/v1/benchmark/run/{id}`: a job of this server, or any run in the store.
pub async fn status(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Viewer, "reading runs")?;
    if let Some(job) = api.jobs.get(&id) {
        return Ok(Json(RunState::Job(job.view())).into_response());
    }
    let entry = api
        .store(move |s| {
            let id = store::resolve(s, &id)?;
            s.entry(&id)?.ok_or(StoreError::NotFound(id))
        })
        .await?;
    let r = &entry.result;
    Ok(Json(RunState::Saved(SavedRunState {
        id: entry.id.clone(),
        status: entry.status.name(),
        levels: entry.plans.len().max(r.levels.len()),
        finished_levels: r.levels.iter().map(|l| l.label.clone()).collect(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        reason: entry.note.clone(),
    }))
    .into_response())
}

/// Where a run stands: one this server runs, or one in the store (started elsewhere, or
/// before the server started).
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RunState {
    Job(JobView),
    Saved(SavedRunState),
}

/// A saved run's state.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SavedRunState {
    pub id: String,
    /// running, complete or interrupted.
    pub status: &'static str,
    pub levels: usize,
    pub finished_levels: Vec<String>,
    pub started_at: String,
    pub finished_at: String,
    pub reason: Option<String>,
}

/// `POST /api/v1/benchmark/run/{id}/cancel`: 202; what was measured is kept.
pub async fn cancel(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Runner, "cancelling runs")?;
    let Some(job) = api.jobs.get(&id) else {
        return Err(ApiError::NotFound(format!(
            "{id}` among this server's runs (a run started from the command line is stopped \
             there"
        )));
    };
    let status = job.status();
    if status.is_final() {
        return Err(ApiError::Conflict(format!(
            "run {id} has already ended ({})",
            status.name()
        )));
    }
    job.cancel();
    Ok((StatusCode::ACCEPTED, Json(job.view())).into_response())
}

/// `DELETE /api/v1/benchmark/run/{id}`: 204; a run still going must be cancelled first.
pub async fn delete(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Admin, "deleting runs")?;
    if let Some(job) = api.jobs.get(&id)
        && !job.status().is_final()
    {
        return Err(ApiError::Conflict(format!(
            "run {id} is {}: cancel it first",
            job.status().name()
        )));
    }
    let deleted = api
        .store(move |s| {
            let full = store::resolve(s, &id)?;
            Ok(match s.entry(&full)? {
                Some(e) if e.status == store::RunStatus::Running => Err(full),
                _ => Ok(s.delete(&full).map(|_| full)?),
            })
        })
        .await?
        .map_err(|id| {
            ApiError::Conflict(format!("run {id} is still running in another process"))
        })?;
    api.jobs.forget(&deleted);
    tracing::info!(run = %deleted, "run deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> String {
        match parse_args(body.as_bytes()) {
            Err(ApiError::Invalid(r)) => r.field,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_bad_body_names_the_setting() {
        assert_eq!(field(r#"{"concurrency": "many"}"#), "concurrency");
        assert_eq!(field(r#"{"concurrency": [1, -2]}"#), "concurrency[1]");
        assert_eq!(field(r#"{"concurency": [1]}"#), "concurency");
        let search = |body: &str| match parse_body::<RecommendArgs>(body.as_bytes()) {
            Err(ApiError::Invalid(r)) => r.field,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(search(r#"{"goodput-target": 90}"#), "peak-concurrency");
        assert_eq!(
            search(r#"{"peak-concurrency": 8, "run": {"concurency": [1]}}"#),
            "run.concurency"
        );
        assert!(matches!(
            parse_args(b"{\"server\": "),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(parse_args(b"{} x"), Err(ApiError::BadRequest(_))));
        let ok = parse_args(br#"{"server": "http://127.0.0.1:1", "num-prompts": 3}"#).unwrap();
        assert_eq!(ok.num_prompts, Some(3));
    }

    #[test]
    fn a_usage_message_names_its_flag() {
        assert_eq!(
            usage_refusal("--duration must be above zero").field,
            "duration"
        );
        assert_eq!(
            usage_refusal("--request-rate: `x` is not a number").field,
            "request-rate"
        );
        assert_eq!(usage_refusal("no levels").field, "body");
    }
}
