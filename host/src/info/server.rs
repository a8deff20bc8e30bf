//! What a server says about itself: its software and version, and the models it serves with
//! their context lengths, from whichever of the servers' own endpoints answer. Nothing is
//! inferred: what no endpoint says stays unknown.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::engine::client::get_json;
use crate::engine::{HyperClient, Target};

const TIMEOUT: Duration = Duration::from_secs(3);

/// One model the server serves.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ModelInfo {
    pub id: String,
    /// Tokens of context, as the server states it.
    pub context_length: Option<u64>,
    /// The endpoints the facts came from.
    pub sources: Vec<String>,
}

/// What the server said.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ServerInfo {
    pub url: String,
    /// `vLLM 0.32.0`, when an endpoint names it.
    pub version: Option<String>,
    pub models: Vec<ModelInfo>,
    /// Endpoints that answered, for the reader to check.
    pub answered: Vec<String>,
}

fn add(models: &mut Vec<ModelInfo>, id: &str, context: Option<u64>, source: &str) {
    if id.is_empty() {
        return;
    }
    match models.iter_mut().find(|m| m.id == id) {
        Some(m) => {
            m.context_length = m.context_length.or(context);
            if !m.sources.iter().any(|s| s == source) {
                m.sources.push(source.to_owned());
            }
        }
        None => models.push(ModelInfo {
            id: id.to_owned(),
            context_length: context,
            sources: vec![source.to_owned()],
        }),
    }
}

/// The context length Ollama's `/api/show` states: `model_info["<arch>.context_length"]`.
fn ollama_context(show: &Value) -> Option<u64> {
    show.get("model_info")?
        .as_object()?
        .iter()
        .find(|(k, _)| k.ends_with(".context_length"))
        .and_then(|(_, v)| v.as_u64())
}

/// The models Triton's repository index lists as loaded (`READY`, or with no state given).
fn triton_models(index: &Value) -> Vec<&str> {
    index
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["state"].as_str().is_none_or(|s| s == "READY"))
        .filter_map(|m| m["name"].as_str())
        .collect()
}

/// Reads every endpoint that may answer; none is required.
pub async fn gather(client: &HyperClient, target: &Target) -> ServerInfo {
    let mut info = ServerInfo {
        url: target.base_url(),
        version: crate::server_version::probe(client, target).await,
        models: Vec::new(),
        answered: Vec::new(),
    };
    let get =
        |path: &'static str| async move { get_json(client, target, path, TIMEOUT).await.ok() };
    if let Some(v) = get("/v1/models").await {
        info.answered.push("/v1/models".into());
        for m in v["data"].as_array().into_iter().flatten() {
            // vLLM and SGLang: max_model_len; llama.cpp: meta.n_ctx_train.
            let context = m["max_model_len"]
                .as_u64()
                .or_else(|| m["meta"]["n_ctx_train"].as_u64());
            add(
                &mut info.models,
                m["id"].as_str().unwrap_or(""),
                context,
                "/v1/models",
            );
        }
    }
    if let Some(v) = get("/info").await {
        info.answered.push("/info".into());
        // TGI: one model, its total token budget per request.
        if let Some(id) = v["model_id"].as_str() {
            add(
                &mut info.models,
                id,
                v["max_total_tokens"].as_u64(),
                "/info",
            );
        }
    }
    if let Some(v) = get("/props").await {
        info.answered.push("/props".into());
        // llama.cpp: the context each slot runs with.
        let id = v["model_alias"]
            .as_str()
            .or_else(|| v["model_path"].as_str());
        if let Some(id) = id {
            let ctx = v["default_generation_settings"]["n_ctx"].as_u64();
            add(&mut info.models, id, ctx, "/props");
        }
    }
    if let Some(v) = get("/get_model_info").await {
        info.answered.push("/get_model_info".into());
        // SGLang: the weights' path (its context length is in /v1/models' max_model_len).
        if let Some(id) = v["model_path"].as_str() {
            add(&mut info.models, id, None, "/get_model_info");
        }
    }
    let index = crate::engine::client::post_json(
        client,
        target,
        "/v2/repository/index",
        &json!({}),
        TIMEOUT,
    )
    .await;
    if let Ok(v) = index {
        info.answered.push("/v2/repository/index".into());
        // Triton: a model's config states no context length in a form common to its backends.
        for name in triton_models(&v) {
            add(&mut info.models, name, None, "/v2/repository/index");
        }
    }
    if let Some(v) = get("/api/tags").await {
        info.answered.push("/api/tags".into());
        for m in v["models"].as_array().into_iter().flatten() {
            let Some(name) = m["name"].as_str() else {
                continue;
            };
            let show = crate::engine::client::post_json(
                client,
                target,
                "/api/show",
                &json!({"model": name}),
                TIMEOUT,
            )
            .await
            .ok();
            add(
                &mut info.models,
                name,
                show.as_ref().and_then(ollama_context),
                "/api/tags",
            );
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_merge_by_id_and_keep_their_sources() {
        let mut models = Vec::new();
        add(&mut models, "m", None, "/v1/models");
        add(&mut models, "m", Some(4096), "/info");
        add(&mut models, "", Some(1), "/info");
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].context_length, Some(4096));
        assert_eq!(models[0].sources, ["/v1/models", "/info"]);
        let show = json!({"model_info": {"general.architecture": "llama",
                                          "llama.context_length": 131072}});
        assert_eq!(ollama_context(&show), Some(131_072));
        assert_eq!(ollama_context(&json!({})), None);
        let index = json!([
            {"name": "llama", "version": "1", "state": "READY"},
            {"name": "old", "version": "1", "state": "UNAVAILABLE"},
            {"name": "ensemble"}
        ]);
        assert_eq!(triton_models(&index), ["llama", "ensemble"]);
        assert!(triton_models(&json!({"error": "x"})).is_empty());
    }
}
