//! Which server software answered, as the server itself says, so a result records it and
//! `compare` can warn when two runs met different versions.
//!
//! Servers name their version at different endpoints; each is asked in turn, before the run
//! and never timed, until one answers with a version. A server that answers none is recorded
//! as unknown, never guessed.

use std::time::Duration;

use crate::engine::client::get_json;
use crate::engine::{HyperClient, Target};

/// How long each endpoint may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// (path, where the version is, the server's name). vLLM first: the simulator, which answers
/// several of these, speaks vLLM's at `/version`.
const PROBES: [(&str, &str, &str); 6] = [
    ("/version", "/version", "vLLM"),
    ("/get_server_info", "/version", "SGLang"),
    ("/info", "/version", "TGI"),
    ("/api/version", "/version", "Ollama"),
    ("/props", "/build_info", "llama.cpp"),
    ("/v2", "/version", "Triton"),
];

/// `"vLLM 0.32.0"`, or `None` when no endpoint says.
pub async fn probe(client: &HyperClient, target: &Target) -> Option<String> {
    for (path, pointer, name) in PROBES {
        if let Some(version) = ask(client, target, path, pointer).await {
            return Some(format!("{name} {version}"));
        }
    }
    None
}

async fn ask(client: &HyperClient, target: &Target, path: &str, pointer: &str) -> Option<String> {
    let v = get_json(client, target, path, PROBE_TIMEOUT).await.ok()?;
    version_in(&v, pointer)
}

/// The non-empty string at `pointer`, at most 64 characters.
fn version_in(v: &serde_json::Value, pointer: &str) -> Option<String> {
    let s = v.pointer(pointer)?.as_str()?.trim();
    (!s.is_empty()).then(|| s.chars().take(64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn versions_are_read_where_each_server_puts_them() {
        let v = |j: serde_json::Value, p: &str| version_in(&j, p);
        assert_eq!(
            v(json!({"version": "0.32.0"}), "/version").as_deref(),
            Some("0.32.0")
        );
        assert_eq!(
            v(
                json!({"build_info": "b1-0c1e570", "n_ctx": 4096}),
                "/build_info"
            )
            .as_deref(),
            Some("b1-0c1e570")
        );
        assert_eq!(v(json!({"version": ""}), "/version"), None);
        assert_eq!(v(json!({"version": 3}), "/version"), None);
    }
}
