//! The route table: each route's handler beside what the OpenAPI document says of it. The
//! router and the document are both built from this one list, so a route cannot be served
//! without being documented.
use std::sync::Arc;

use axum::routing::{MethodRouter, delete, get, post};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::keys::Role;
use super::{Api, info, jobs, live, plugins, reads, runs, ui};

/// A schema, made by the generator the document uses.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// A WebAssembly component as a request body.
fn wasm(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "string",
        "contentMediaType": "application/wasm",
        "description": "The component's bytes (`application/octet-stream` is taken too)."
    })
}

/// What a route answers when it succeeds.
pub struct Answer {
    pub status: u16,
    pub media: &'static str,
    pub schema: Option<SchemaFn>,
    pub description: &'static str,
}

/// One route as documented.
pub struct Route {
    pub method: &'static str,
    /// axum's path syntax, which is OpenAPI's (`/run/{id}`).
    pub path: &'static str,
    /// The least role it needs; None: no key.
    pub role: Option<Role>,
    pub summary: &'static str,
    /// Query parameters: name, description.
    pub query: &'static [(&'static str, &'static str)],
    /// The JSON body it reads.
    pub body: Option<SchemaFn>,
    pub answer: Answer,
}

const JSON: &str = "application/json";

fn json(status: u16, schema: SchemaFn, description: &'static str) -> Answer {
    Answer {
        status,
        media: JSON,
        schema: Some(schema),
        description,
    }
}

/// A job accepted: run or search.
fn queued() -> Answer {
    json(
        202,
        schema::<jobs::JobView>,
        "Queued; `Location` is its status.",
    )
}

/// Every route, with its handler.
pub fn table() -> Vec<(Route, MethodRouter<Arc<Api>>)> {
    let viewer = Some(Role::Viewer);
    let runner = Some(Role::Runner);
    let page = |path, summary, media, handler| {
        (
            Route {
                method: "get",
                path,
                role: None,
                summary,
                query: &[],
                body: None,
                answer: Answer {
                    status: 200,
                    media,
                    schema: None,
                    description: "Embedded in the binary; holds no data.",
                },
            },
            handler,
        )
    };
    vec![
        page("/", "The web UI.", "text/html", get(ui::index)),
        page(
            "/ui/app.js",
            "The web UI's script.",
            "text/javascript",
            get(ui::script),
        ),
        page(
            "/ui/app.css",
            "The web UI's style.",
            "text/css",
            get(ui::style),
        ),
        (
            Route {
                method: "get",
                path: "/health",
                role: None,
                summary: "Whether the server answers (no key needed).",
                query: &[],
                body: None,
                answer: json(200, schema::<live::Health>, "It answers."),
            },
            get(live::health),
        ),
        (
            Route {
                method: "get",
                path: "/metrics",
                role: viewer,
                summary: "Prometheus text: runs by status, requests sent and completed, errors \
                          by class.",
                query: &[],
                body: None,
                answer: Answer {
                    status: 200,
                    media: "text/plain",
                    schema: None,
                    description: "Prometheus text exposition 0.0.4.",
                },
            },
            get(live::metrics),
        ),
        (
            Route {
                method: "get",
                path: "/api/v1/openapi.json",
                role: viewer,
                summary: "This document.",
                query: &[],
                body: None,
                answer: Answer {
                    status: 200,
                    media: JSON,
                    schema: None,
                    description: "OpenAPI 3.1.",
                },
            },
            get(super::openapi::serve),
        ),
        (
            Route {
                method: "post",
                path: "/api/v1/benchmark/run",
                role: runner,
                summary: "Submit a run: `run`'s settings under the scenario file's names. \
                          Refused with 422 naming the setting. The load target's own API key, \
                          if it needs one, goes in the `LLM-Loadtest-Target-Key` header (never \
                          stored).",
                query: &[],
                body: Some(schema::<crate::cli::run::RunArgs>),
                answer: queued(),
            },
            post(runs::submit),
        ),
        (
            Route {
                method: "get",
                path: "/api/v1/benchmark/run/{id}",
                role: viewer,
                summary: "Where a run stands, with its live progress.",
                query: &[],
                body: None,
                answer: json(200, schema::<runs::RunState>, "The run's state."),
            },
            get(runs::status),
        ),
        (
            Route {
                method: "delete",
                path: "/api/v1/benchmark/run/{id}",
                role: Some(Role::Admin),
                summary: "Delete a saved run (one still going must be cancelled first).",
                query: &[],
                body: None,
                answer: Answer {
                    status: 204,
                    media: JSON,
                    schema: None,
                    description: "Deleted.",
                },
            },
            delete(runs::delete),
        ),
        (
            Route {
                method: "post",
                path: "/api/v1/benchmark/run/{id}/cancel",
                role: runner,
                summary: "Stop a run; what it measured is saved (as interrupted).",
                query: &[],
                body: None,
                answer: json(202, schema::<jobs::JobView>, "Stopping."),
            },
            post(runs::cancel),
        ),
        (
            Route {
                method: "get",
                path: "/api/v1/benchmark/result/{id}",
                role: viewer,
                summary: "A saved run's result (a run still going: what it has so far).",
                query: &[("records", "true: every request's record in each level")],
                body: None,
                answer: json(200, schema::<reads::ResultAnswer>, "The result."),
            },
            get(reads::result),
        ),
        (
            Route {
                method: "get",
                path: "/api/v1/benchmark/history",
                role: viewer,
                summary: "Saved runs, newest first, with `history`'s filters.",
                query: &[
                    ("model", "model name contains (any case)"),
                    ("server", "server URL contains (any case)"),
                    ("since", "a date, an RFC 3339 time or an age (7d)"),
                    ("tag", "comma-separated tags, all must match"),
                    ("limit", "runs per page, 1 to 500 (50)"),
                    ("offset", "runs to skip (0)"),
                ],
                body: None,
                answer: json(200, schema::<reads::HistoryPage>, "One page."),
            },
            get(reads::history),
        ),
        (
            Route {
                method: "post",
                path: "/api/v1/benchmark/compare",
                role: viewer,
                summary: "Saved runs side by side per level, the first as baseline: deltas, \
                          bootstrap intervals and rank tests, as `compare` reports them.",
                query: &[],
                body: Some(schema::<reads::CompareRequest>),
                answer: Answer {
                    status: 200,
                    media: JSON,
                    schema: None,
                    description: "`{comparison, report}` in JSON, or the report as asked.",
                },
            },
            post(reads::compare),
        ),
        (
            Route {
                method: "post",
                path: "/api/v1/benchmark/import",
                role: runner,
                summary: "Save a result file as a new run, as `import` does: ours (`export \
                          --format json`, `run --output`) or vLLM bench serve JSON.",
                query: &[
                    ("name", "the file's name, kept as the run's origin"),
                    ("server", "the server a vLLM result was measured against"),
                    ("tag", "comma-separated tags to add"),
                ],
                body: Some(schema::<serde_json::Value>),
                answer: json(201, schema::<reads::Imported>, "Saved."),
            },
            post(reads::import).layer(axum::extract::DefaultBodyLimit::max(reads::IMPORT_LIMIT)),
        ),
        (
            Route {
                method: "get",
                path: "/api/v1/benchmark/export/{id}",
                role: viewer,
                summary: "A saved run as `export` writes it.",
                query: &[(
                    "format",
                    "json (default), csv, md, html, or vllm (its files as one JSON array)",
                )],
                body: None,
                answer: Answer {
                    status: 200,
                    media: "*/*",
                    schema: None,
                    description: "The run in that format.",
                },
            },
            get(reads::export),
        ),
        (
            Route {
                method: "post",
                path: "/api/v1/recommend",
                role: runner,
                summary: "Start a `recommend` search: its settings under their flag names, \
                          `run`'s nested under `run`. Followed as a run is (status, WebSocket, \
                          cancel; each probe a level); saved as one run whose result carries \
                          `recommendation`. The target's own key: as for runs.",
                query: &[],
                body: Some(schema::<crate::cli::recommend::RecommendArgs>),
                answer: queued(),
            },
            post(runs::recommend),
        ),
        (
            Route {
                method: "get",
                path: "/api/v1/info",
                role: runner,
                summary: "What `info` says: the server's version and models as it states them, \
                          and this service's machine (CPUs, memory, GPUs).",
                query: &[("server", "the server's base URL (an allowed target)")],
                body: None,
                answer: json(200, schema::<crate::info::Info>, "What was found."),
            },
            get(info::info),
        ),
        (
            Route {
                method: "get",
                path: "/api/v1/plugins",
                role: viewer,
                summary: "The plugins runs can name: built in, then uploaded.",
                query: &[],
                body: None,
                answer: json(200, schema::<Vec<plugins::PluginView>>, "Every plugin."),
            },
            get(plugins::list),
        ),
        (
            Route {
                method: "post",
                path: "/api/v1/plugins",
                role: runner,
                summary: "Upload an adapter or policy component: checked as `plugin check` \
                          does (an adapter also through the conformance battery, whose verdict \
                          is answered), stored by content hash, then named by runs.",
                query: &[(
                    "name",
                    "the name runs will use (default: the name the plugin gives itself)",
                )],
                body: Some(wasm),
                answer: json(201, schema::<plugins::Uploaded>, "Checked and stored."),
            },
            post(plugins::upload)
                .layer(axum::extract::DefaultBodyLimit::max(plugins::UPLOAD_LIMIT)),
        ),
        (
            Route {
                method: "delete",
                path: "/api/v1/plugins/{name}",
                role: Some(Role::Admin),
                summary: "Forget an uploaded plugin; results of runs that used it keep its hash.",
                query: &[],
                body: None,
                answer: Answer {
                    status: 204,
                    media: JSON,
                    schema: None,
                    description: "Deleted.",
                },
            },
            delete(plugins::delete),
        ),
        (
            Route {
                method: "get",
                path: "/ws/run/{id}",
                role: viewer,
                summary: "WebSocket (subprotocol `llm-loadtest`; a browser sends its key as \
                          the subprotocol `bearer.KEY`): a snapshot of the run, each progress \
                          event, then `finished` with the result.",
                query: &[],
                body: None,
                answer: Answer {
                    status: 101,
                    media: JSON,
                    schema: None,
                    description: "Switching to the WebSocket protocol.",
                },
            },
            get(live::ws),
        ),
    ]
}
