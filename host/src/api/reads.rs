//! Saved runs over HTTP: a result, the history, an export. Each reads the store as the
//! command line does (`show`, `history`, `export`), so both answer the same.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Api;
use super::error::ApiError;
use super::keys::Role;
use crate::cli::export::{self, ExportFormat};
use crate::store::{self, RunFilter, RunRow};

#[derive(Debug, Deserialize)]
pub struct ResultQuery {
    /// Include every request's record (`requests` in each level).
    #[serde(default)]
    records: bool,
}

/// `GET /api/v1/benchmark/result/{id}`: the run's entry and result (a run still going
/// answers with what it has measured so far).
pub async fn result(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ResultQuery>,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Viewer, "reading runs")?;
    if let Some(job) = api.jobs.get(&id)
        && job.status() == super::jobs::JobStatus::Queued
    {
        return Err(ApiError::Conflict(format!(
            "run {id} is queued: nothing is measured yet"
        )));
    }
    let run = api.store(move |s| store::load(s, &id)).await?;
    let result = if q.records {
        run.result_with_records()
    } else {
        run.entry.result.clone()
    };
    Ok(Json(ResultAnswer {
        id: run.entry.id,
        status: run.entry.status.name(),
        note: run.entry.note,
        result,
    })
    .into_response())
}

/// A saved run's result.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ResultAnswer {
    pub id: String,
    /// running, complete or interrupted (a cancelled run is saved as interrupted).
    pub status: &'static str,
    /// Why a run is marked as it is (recovery, an interruption).
    pub note: Option<String>,
    pub result: crate::result::RunResult,
}

/// A page of the history, newest first.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HistoryPage {
    /// Runs matching the filters, all pages.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub runs: Vec<RunRow>,
    /// Runs that could not be read (another schema version), so none is silently skipped.
    pub unreadable: Vec<String>,
}

/// `history`'s filters, paginated. `tag` is comma-separated; every one must match.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    model: Option<String>,
    server: Option<String>,
    since: Option<String>,
    tag: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
}

/// A `tag` query value: comma-separated tags.
fn tag_list(tag: Option<&str>) -> Vec<String> {
    tag.into_iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Most runs in one page.
pub const MAX_PAGE: usize = 500;
const DEFAULT_PAGE: usize = 50;

/// `GET /api/v1/benchmark/history`: runs newest first, `{total, offset, limit, runs}`.
pub async fn history(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Viewer, "reading runs")?;
    let since = q
        .since
        .as_deref()
        .map(crate::cli::history::parse_since)
        .transpose()
        .map_err(|reason| ApiError::invalid("since", reason))?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid(
            "limit",
            format!("{limit} is not between 1 and {MAX_PAGE}"),
        ));
    }
    let filter = RunFilter {
        model: q.model,
        server: q.server,
        since,
        tags: tag_list(q.tag.as_deref()),
    };
    let (runs, unreadable) = api.store(move |s| store::list(s, &filter)).await?;
    let page: Vec<RunRow> = runs
        .iter()
        .skip(q.offset)
        .take(limit)
        .map(RunRow::of)
        .collect();
    Ok(Json(HistoryPage {
        total: runs.len(),
        offset: q.offset,
        limit,
        runs: page,
        unreadable: unreadable.iter().map(ToString::to_string).collect(),
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    format: Option<ExportFormat>,
}

/// `GET /api/v1/benchmark/export/{id}?format=json|csv|md|html|vllm`, as `export` writes it
/// (vLLM's one file per level as a JSON array; Markdown without its chart files).
pub async fn export(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Viewer, "reading runs")?;
    let format = q.format.unwrap_or(ExportFormat::Json);
    let run = api.store(move |s| store::load(s, &id)).await?;
    let name = run.entry.id.clone();
    let text = tokio::task::spawn_blocking(move || export::render(&run, format))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    let (mime, ext) = match format {
        ExportFormat::Json => ("application/json", "json"),
        ExportFormat::Vllm => ("application/json", "vllm.json"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Md => ("text/markdown; charset=utf-8", "md"),
        ExportFormat::Html => ("text/html; charset=utf-8", "html"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}.{ext}\""),
            ),
        ],
        text,
    )
        .into_response())
}

/// What to compare, and how to answer.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    /// Two or more run IDs (or unique prefixes); the first is the baseline.
    pub ids: Vec<String>,
    #[serde(default)]
    pub format: CompareAs,
}

/// `json`: the comparison's figures (per level: values, deltas' bootstrap intervals, rank
/// tests) and the report as `compare` prints it; `html`, `md`, `text`: the report.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CompareAs {
    #[default]
    Json,
    Html,
    Md,
    Text,
}

/// `POST /api/v1/benchmark/compare`: `compare`'s output for saved runs.
pub async fn compare(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Viewer, "reading runs")?;
    if !super::runs::is_json(&headers) {
        return Err(ApiError::NotJson);
    }
    let req: CompareRequest = super::runs::parse_body(&body)?;
    if req.ids.len() < 2 {
        return Err(ApiError::invalid(
            "ids",
            "give two or more runs; the first is the baseline",
        ));
    }
    let ids = req.ids;
    let runs = api
        .store(move |s| {
            ids.iter()
                .map(|id| store::load(s, id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let format = req.format;
    let (mime, text) = tokio::task::spawn_blocking(move || {
        let cmp = crate::compare::compare(&runs);
        let doc = crate::report::document::comparison_document(&cmp, &runs)?;
        anyhow::Ok(match format {
            CompareAs::Json => (
                "application/json",
                serde_json::to_string(&serde_json::json!({ "comparison": cmp, "report": doc }))?,
            ),
            CompareAs::Html => (
                "text/html; charset=utf-8",
                crate::report::html::render(&doc),
            ),
            CompareAs::Md => (
                "text/markdown; charset=utf-8",
                crate::report::markdown::render(&doc, None),
            ),
            CompareAs::Text => ("text/plain; charset=utf-8", crate::cli::compare::text(&doc)),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    Ok(([(header::CONTENT_TYPE, mime)], text).into_response())
}

/// Where an imported file came from, and what to add to it.
#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    /// The file's name, kept as the run's origin.
    name: Option<String>,
    /// The server a vLLM result was measured against (vLLM's result names none).
    server: Option<String>,
    /// Comma-separated tags to add.
    tag: Option<String>,
}

/// A saved import.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Imported {
    pub id: String,
    /// What the import could not carry over.
    pub notes: Vec<String>,
}

/// Largest file `import` takes: a result with every request's record.
pub const IMPORT_LIMIT: usize = 256 * 1024 * 1024;

/// `POST /api/v1/benchmark/import`: a result file (ours, or vLLM bench serve JSON) as the
/// body, saved as a new run, as `import` does.
pub async fn import(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<ImportQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Runner, "importing runs")?;
    if !super::runs::is_json(&headers) {
        return Err(ApiError::NotJson);
    }
    let name = q.name.unwrap_or_else(|| "upload".into());
    let tags = tag_list(q.tag.as_deref());
    let prepared = tokio::task::spawn_blocking(move || {
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))?;
        crate::cli::import::prepare(&text, &name, q.server.as_deref(), &tags)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::invalid("body", format!("{e:#}")))?;
    let notes = prepared.notes;
    let (result, records, origin) = (prepared.result, prepared.records, prepared.origin);
    let id = api
        .store(move |s| store::save_result(s, result, records, origin))
        .await?;
    tracing::info!(run = %id, "run imported");
    Ok((
        axum::http::StatusCode::CREATED,
        Json(Imported { id, notes }),
    )
        .into_response())
}
