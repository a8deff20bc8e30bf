//! Plugins over HTTP: the ones built in, and adapters and policies a team uploads.
//!
//! An upload is checked as `plugin check` checks a file — read, held to the contract,
//! compiled, one instance made — by the runtime the service's runs use, so what is accepted is
//! what will load (and its compiled form is already cached when a run first uses it). An
//! adapter also goes through the conformance battery; its verdict is answered, not enforced,
//! because the battery cannot write every protocol an adapter may speak.
//!
//! What is accepted is kept in the data directory by content: `plugins/SHA256/NAME.wasm`, a
//! folder per content and a file per name given to it (the file's name is what a run's errors
//! call it). `plugins/index.json` maps names to content; it is written whole and renamed into
//! place, so a reader never sees half of it. A run names an uploaded plugin as it names a
//! built-in one; the service turns the name into the stored file before the run is checked,
//! and the run's result records the plugin's hash, so giving a name to new content later does
//! not change what an earlier result says it ran.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Api;
use super::error::ApiError;
use super::keys::Role;
use crate::plugin::{LoadedPlugin, PluginKind, Runtime, embedded_plugins};

/// Largest component accepted: the embedded adapters are a few hundred KiB.
pub const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;

/// One plugin as listed.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PluginView {
    /// What runs name it by (`adapter`, `slo-policy`, recommend's `policy`).
    pub name: String,
    /// adapter, slo or recommend.
    pub kind: String,
    /// The version the plugin gives itself.
    pub version: String,
    /// The contract version it was built against.
    pub wit_version: String,
    pub sha256: String,
    pub size: u64,
    pub description: String,
    /// embedded or uploaded.
    pub origin: String,
    /// The public ID of the key that uploaded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
}

/// An accepted upload.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Uploaded {
    pub plugin: PluginView,
    /// The content this name had before, when the upload gave it new content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// An adapter's conformance battery, as `plugin check --conformance` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conformance: Option<Conformance>,
}

/// The conformance battery's verdict on an uploaded adapter.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Conformance {
    /// No case failed.
    pub passed: bool,
    pub report: String,
}

/// The uploaded plugins of one data directory.
pub struct Plugins {
    dir: PathBuf,
    /// Uploads and deletes of this server take turns rewriting the index.
    writing: tokio::sync::Mutex<()>,
}

impl Plugins {
    pub fn new(data_dir: &Path) -> Plugins {
        Plugins {
            dir: data_dir.join("plugins"),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn file(&self, p: &PluginView) -> PathBuf {
        self.dir.join(&p.sha256).join(format!("{}.wasm", p.name))
    }

    /// The uploaded plugins by name; none before the first upload.
    pub fn index(&self) -> Result<BTreeMap<String, PluginView>, ApiError> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::Internal(format!("{} cannot be read: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(ApiError::Internal(format!(
                "{} cannot be read: {e}",
                path.display()
            ))),
        }
    }

    fn save_index(&self, index: &BTreeMap<String, PluginView>) -> Result<(), ApiError> {
        let path = self.index_path();
        let tmp = self.dir.join(".index.json.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            std::fs::write(&tmp, serde_json::to_vec_pretty(index)?)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| ApiError::Internal(format!("cannot write {}: {e}", path.display())))
    }

    /// What a run's `field` names, as the runtime loads it: a built-in plugin's name as it
    /// is, an uploaded one's as its stored file. Refused when it is neither, or another kind.
    pub fn resolve(&self, field: &str, name: &str, want: PluginKind) -> Result<String, ApiError> {
        let refuse = |reason: String| ApiError::invalid(field, reason);
        if let Some(p) = embedded_plugins().iter().find(|p| p.name == name) {
            return if p.kind == want {
                Ok(name.to_string())
            } else {
                Err(refuse(format!(
                    "`{name}` is a built-in {} plugin, not {}",
                    p.kind.name(),
                    want.name()
                )))
            };
        }
        let index = self.index()?;
        match index.get(name) {
            Some(p) if p.kind == want.name() => Ok(self.file(p).display().to_string()),
            Some(p) => Err(refuse(format!(
                "`{name}` is an uploaded {} plugin, not {}",
                p.kind,
                want.name()
            ))),
            None => Err(refuse(format!(
                "`{name}` is neither built in ({}) nor uploaded (GET /api/v1/plugins lists them)",
                names(want)
            ))),
        }
    }
}

/// The built-in plugins of one kind, for messages.
fn names(kind: PluginKind) -> String {
    let names: Vec<&str> = embedded_plugins()
        .iter()
        .filter(|p| p.kind == kind)
        .map(|p| p.name)
        .collect();
    names.join(", ")
}

fn view(loaded: &LoadedPlugin, name: &str, size: usize, origin: &str) -> PluginView {
    let id = loaded.identity();
    PluginView {
        name: name.to_string(),
        kind: loaded.kind().name().to_string(),
        version: id.version.clone(),
        wit_version: id.wit_version.clone(),
        sha256: id.sha256.clone(),
        size: size as u64,
        description: loaded.description().to_string(),
        origin: origin.to_string(),
        uploaded_by: None,
        uploaded_at: None,
    }
}

/// A name runs can use: short, a file name on every platform, not a built-in plugin's.
fn check_name(name: &str) -> Result<(), String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || name.starts_with('.') || !name.chars().all(fine) {
        return Err(format!(
            "`{name}` is not a plugin name: 1 to 64 letters, digits, `-`, `_` or `.`, not \
             starting with `.`"
        ));
    }
    if name.ends_with(".wasm") {
        return Err(format!("`{name}`: give the name without `.wasm`"));
    }
    if embedded_plugins().iter().any(|p| p.name == name) {
        return Err(format!("`{name}` is a built-in plugin's name"));
    }
    Ok(())
}

/// `GET /api/v1/plugins`: the built-in plugins, then the uploaded ones, by name.
pub async fn list(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Viewer, "listing plugins")?;
    let runtime = Arc::clone(api.jobs.runtime());
    // Loading a built-in plugin the first time compiles it: not on the async threads.
    let mut all = tokio::task::spawn_blocking(move || {
        embedded_plugins()
            .iter()
            .filter_map(|p| {
                let loaded = runtime.load_any(p.name).ok()?;
                Some(view(&loaded, p.name, p.bytes.len(), "embedded"))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("listing plugins: {e}")))?;
    all.extend(api.plugins.index()?.into_values());
    Ok(Json(all).into_response())
}

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// The name runs will use; by default the name the plugin gives itself.
    pub name: Option<String>,
}

/// `POST /api/v1/plugins?name=NAME`: the component's bytes as the body
/// (`Content-Type: application/wasm`); 201 once checked and stored.
pub async fn upload(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = api
        .gate
        .check(&headers, Role::Runner, "uploading plugins")?;
    // Not a form's type: another web page cannot post one through a user's browser.
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(
        media.as_deref(),
        Some("application/wasm" | "application/octet-stream")
    ) {
        return Err(ApiError::NotWasm);
    }
    if let Some(name) = &q.name {
        check_name(name).map_err(|reason| ApiError::invalid("name", reason))?;
    }
    let runtime = Arc::clone(api.jobs.runtime());
    let label = format!("{}.wasm", q.name.as_deref().unwrap_or("upload"));
    let size = body.len();
    let bytes = body.to_vec();
    let checked = tokio::task::spawn_blocking(move || check(&runtime, &label, bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("checking the upload: {e}")))?;
    let (loaded, conformance) = checked.map_err(|reason| ApiError::invalid("body", reason))?;
    let name = match q.name {
        Some(n) => n,
        None => {
            let own = loaded.identity().name.clone();
            check_name(&own).map_err(|reason| {
                ApiError::invalid(
                    "name",
                    format!("the plugin calls itself {reason}; give ?name="),
                )
            })?;
            own
        }
    };
    let mut plugin = view(&loaded, &name, size, "uploaded");
    plugin.uploaded_by = Some(caller.key_id.clone());
    plugin.uploaded_at = Some(crate::result::now_rfc3339());
    let _turn = api.plugins.writing.lock().await;
    let mut index = api.plugins.index()?;
    let file = api.plugins.file(&plugin);
    let write = || -> std::io::Result<()> {
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{name}.wasm.tmp"));
        std::fs::write(&tmp, &body)?;
        std::fs::rename(&tmp, &file)
    };
    write().map_err(|e| ApiError::Internal(format!("cannot write {}: {e}", file.display())))?;
    let replaced = index
        .insert(name.clone(), plugin.clone())
        .map(|old| old.sha256)
        .filter(|old| *old != plugin.sha256);
    api.plugins.save_index(&index)?;
    tracing::info!(plugin = %name, sha256 = %plugin.sha256, key = %caller.key_id, "plugin uploaded");
    let location = format!("/api/v1/plugins/{name}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(Uploaded {
            plugin,
            replaced,
            conformance,
        }),
    )
        .into_response())
}

/// `plugin check`'s checks on bytes, and the conformance battery for an adapter.
fn check(
    runtime: &Runtime,
    label: &str,
    bytes: Vec<u8>,
) -> Result<(LoadedPlugin, Option<Conformance>), String> {
    let loaded = runtime
        .check_bytes(label, bytes)
        .map_err(|e| e.to_string())?;
    loaded.probe().map_err(|e| e.to_string())?;
    let conformance = match &loaded {
        LoadedPlugin::Adapter(a) => {
            let report = crate::conformance::run_battery(a);
            Some(Conformance {
                passed: report.passed(),
                report: report.to_string(),
            })
        }
        _ => None,
    };
    Ok((loaded, conformance))
}

/// `DELETE /api/v1/plugins/{name}`: 204; runs that used it keep its hash in their results.
pub async fn delete(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    api.gate.check(&headers, Role::Admin, "deleting plugins")?;
    if embedded_plugins().iter().any(|p| p.name == name) {
        return Err(ApiError::Conflict(format!(
            "`{name}` is built into this binary"
        )));
    }
    let _turn = api.plugins.writing.lock().await;
    let mut index = api.plugins.index()?;
    let Some(gone) = index.remove(&name) else {
        return Err(ApiError::Missing(format!("no uploaded plugin `{name}`")));
    };
    api.plugins.save_index(&index)?;
    let file = api.plugins.file(&gone);
    let _ = std::fs::remove_file(&file);
    if let Some(dir) = file.parent() {
        // Empty once no other name holds this content.
        let _ = std::fs::remove_dir(dir);
    }
    tracing::info!(plugin = %name, "plugin deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_names_and_not_built_in_ones() {
        assert!(check_name("my-adapter_2.1").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "x.wasm", "a b", &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let builtin = embedded_plugins()[0].name;
        assert!(check_name(builtin).unwrap_err().contains("built-in"));
    }

    #[test]
    fn a_run_names_built_in_and_uploaded_plugins_of_the_right_kind() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = Plugins::new(dir.path());
        assert_eq!(
            plugins
                .resolve("adapter", "openai", PluginKind::Adapter)
                .unwrap(),
            "openai"
        );
        let refused = |r: Result<String, ApiError>| match r {
            Err(ApiError::Invalid(r)) => (r.field, r.reason),
            other => panic!("{other:?}"),
        };
        let (field, reason) = refused(plugins.resolve("slo-policy", "openai", PluginKind::Slo));
        assert_eq!(field, "slo-policy");
        assert!(reason.contains("built-in adapter"), "{reason}");
        let (_, reason) = refused(plugins.resolve("adapter", "mine", PluginKind::Adapter));
        assert!(reason.contains("neither built in"), "{reason}");
        let mine = PluginView {
            name: "mine".into(),
            kind: "adapter".into(),
            version: "1".into(),
            wit_version: "0.1.0".into(),
            sha256: "ab".repeat(32),
            size: 3,
            description: String::new(),
            origin: "uploaded".into(),
            uploaded_by: None,
            uploaded_at: None,
        };
        plugins
            .save_index(&BTreeMap::from([("mine".to_string(), mine)]))
            .unwrap();
        let path = plugins
            .resolve("adapter", "mine", PluginKind::Adapter)
            .unwrap();
        assert!(
            path.ends_with(&format!("{}/mine.wasm", "ab".repeat(32))),
            "{path}"
        );
        let (_, reason) = refused(plugins.resolve("slo-policy", "mine", PluginKind::Slo));
        assert!(reason.contains("uploaded adapter"), "{reason}");
    }
}
