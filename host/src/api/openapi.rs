//! The OpenAPI 3.1 document, built from the route table ([`super::routes`]) and the JSON
//! Schemas of the Rust types the routes read and answer (schemars, JSON Schema 2020-12, the
//! dialect OpenAPI 3.1 uses as it is).
//!
//! Answers are described as they are serialised and the run body as it is read, so one
//! generator cannot do both without a type's two shapes clashing under one name: answers'
//! types go under `components/schemas`, the run body is inlined whole.
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use schemars::generate::{Contract, SchemaSettings};
use serde_json::{Map, Value, json};

use super::Api;
use super::error::{ApiError, ErrorBody};
use super::keys::Role;
use super::routes::{self, Route};

/// The document.
pub fn document() -> Value {
    let mut answers = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.contract = Contract::Serialize;
        })
        .into_generator();
    let mut bodies = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let error = answers.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for (route, _) in routes::table() {
        let op = operation(&route, &mut answers, &mut bodies, &error);
        let item = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        item[route.method] = op;
    }
    let schemas = Value::Object(answers.take_definitions(true));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "llm-loadtest",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Load tests for LLM inference servers, as a shared service: runs \
                submitted and followed live, one history. Every route but /health needs an \
                API key (`Authorization: Bearer KEY`); `x-required-role` says which.",
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas,
        },
        "paths": paths,
    })
}

fn operation(
    route: &Route,
    answers: &mut schemars::SchemaGenerator,
    bodies: &mut schemars::SchemaGenerator,
    error: &schemars::Schema,
) -> Value {
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true,
                "description": "a run ID, or a unique prefix of one",
                "schema": { "type": "string" },
            })
        })
        .collect();
    params.extend(route.query.iter().map(|(name, description)| {
        json!({
            "name": name, "in": "query", "required": false,
            "description": description, "schema": { "type": "string" },
        })
    }));
    let a = &route.answer;
    let mut ok = json!({ "description": a.description });
    if a.status != 204 && a.status != 101 {
        let schema = match a.schema {
            Some(f) => f(answers).to_value(),
            None if a.media == "application/json" => json!({ "type": "object" }),
            None => json!({ "type": "string" }),
        };
        ok["content"] = json!({ a.media: { "schema": schema } });
    }
    let error_answer = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": error } } });
    let mut responses = Map::new();
    responses.insert(a.status.to_string(), ok);
    if route.role.is_some() {
        responses.insert("401".into(), error_answer("No valid API key."));
        responses.insert("403".into(), error_answer("The key's role is not enough."));
    }
    responses.insert("4XX".into(), error_answer("Refused; the body says why."));
    let mut op = json!({
        "operationId": operation_id(route),
        "summary": route.summary,
        "parameters": params,
        "responses": responses,
        "security": if route.role.is_some() { json!([{ "bearer": [] }]) } else { json!([]) },
    });
    if let Some(role) = route.role {
        op["x-required-role"] = json!(role.name());
    }
    if let Some(body) = route.body {
        let mut schema = body(bodies).to_value();
        if let Some(o) = schema.as_object_mut() {
            o.remove("$schema");
        }
        // A body that is not JSON says its media type in its schema (`contentMediaType`).
        let media = schema
            .get("contentMediaType")
            .and_then(|m| m.as_str())
            .unwrap_or("application/json")
            .to_string();
        op["requestBody"] = json!({
            "required": true,
            "content": { media: { "schema": schema } },
        });
    }
    op
}

/// `get_api_v1_benchmark_run_id`: unique per method and path.
fn operation_id(route: &Route) -> String {
    let path: String = route
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut id = format!("{}_{}", route.method, path.trim_matches('_'));
    while id.contains("__") {
        id = id.replace("__", "_");
    }
    id
}

/// `GET /api/v1/openapi.json`.
pub async fn serve(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    api.gate
        .check(&headers, Role::Viewer, "reading the API document")?;
    Ok(Json(document()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_schema_it_refers_to() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (i, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[i + 21..].chars().take_while(|c| *c != '"').collect();
            assert!(
                schemas.contains_key(&name),
                "a $ref to a missing schema: {name}"
            );
        }
        let body = &doc["paths"]["/api/v1/benchmark/run"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert!(
            body["properties"]["concurrency"]["description"]
                .as_str()
                .unwrap()
                .contains("Closed loop"),
            "the run settings carry their --help text: {body}"
        );
        assert!(
            body["properties"].get("api-key").is_none(),
            "never read from JSON"
        );
        let ids: Vec<String> = routes::table()
            .iter()
            .map(|(r, _)| operation_id(r))
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(ids.len(), unique.len(), "{ids:?}");
    }
}
