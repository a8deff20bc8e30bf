//! Plugins over the API: listed, uploaded (checked first, stored by content hash), named by a
//! run that then loads the stored file, refused when broken or of the wrong kind, deleted.
use serde_json::{Value, json};

use crate::api_support;
use crate::plugin_support::test_guest;
use crate::support;

fn openai_bytes() -> Vec<u8> {
    llm_loadtest::plugin::embedded_plugins()
        .iter()
        .find(|p| p.name == "openai")
        .expect("the openai adapter is built in")
        .bytes
        .to_vec()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn upload(
    s: &api_support::Server,
    name: Option<&str>,
    key: &str,
    bytes: Vec<u8>,
) -> api_support::Answer {
    let path = match name {
        Some(n) => format!("/api/v1/plugins?name={n}"),
        None => "/api/v1/plugins".to_string(),
    };
    s.call_bytes("POST", &path, Some(key), Some(bytes), "application/wasm")
        .await
}

fn names(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["origin"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_adapter_is_checked_stored_by_hash_and_run_by_name() {
    let sim = support::sim(support::fixed(5, 2)).await;
    let s = api_support::server(1, 64).await;
    let builtin = s.get("/api/v1/plugins", &s.viewer).await;
    assert_eq!(builtin.status, 200, "{}", builtin.body);
    let before = names(&builtin.json());
    assert!(
        before.contains(&("openai".into(), "embedded".into())),
        "{before:?}"
    );
    assert!(before.iter().all(|(_, o)| o == "embedded"), "{before:?}");

    // A viewer may not upload; a runner may.
    let bytes = openai_bytes();
    let refused = upload(&s, Some("team-openai"), &s.viewer, bytes.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let a = upload(&s, Some("team-openai"), &s.runner, bytes.clone()).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let up = a.json();
    let sha = sha256(&bytes);
    assert_eq!(up["plugin"]["sha256"], sha.as_str(), "{up}");
    assert_eq!(up["plugin"]["kind"], "adapter");
    assert_eq!(up["plugin"]["origin"], "uploaded");
    assert_eq!(up["conformance"]["passed"], true, "{up}");
    assert!(up.get("replaced").is_none(), "{up}");
    let stored = s
        .dir
        .path()
        .join("plugins")
        .join(&sha)
        .join("team-openai.wasm");
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        bytes,
        "stored whole, by hash"
    );
    let listed = names(&s.get("/api/v1/plugins", &s.viewer).await.json());
    assert!(
        listed.contains(&("team-openai".into(), "uploaded".into())),
        "{listed:?}"
    );

    // A run names it as it names a built-in adapter, and records which bytes it ran.
    let body = json!({
        "server": format!("http://{}", sim.local_addr()),
        "model": "sim-llama",
        "adapter": "team-openai",
        "concurrency": [2],
        "num-prompts": 6,
        "input-len": 8,
        "output-len": 4,
        "ignore-eos": true,
        "tokenizer": "cl100k_base",
    });
    let id = s.submit(&body.to_string()).await;
    let frames = s.frames(&id, &s.viewer).await;
    let last = frames.last().unwrap();
    assert_eq!(last["status"], "complete", "{last}");
    let adapter = &last["result"]["adapter"];
    assert_eq!(adapter["sha256"], sha.as_str(), "{adapter}");
    assert!(
        adapter["source"]
            .as_str()
            .unwrap()
            .ends_with("team-openai.wasm"),
        "{adapter}"
    );
    assert_eq!(last["result"]["levels"][0]["summary"]["completed"], 6);

    // Deleting it needs an admin; a run that names it afterwards is refused up front.
    let path = "/api/v1/plugins/team-openai";
    assert_eq!(
        s.call("DELETE", path, Some(&s.runner), None).await.status,
        403
    );
    let gone = s.call("DELETE", path, Some(&s.admin), None).await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert!(!stored.exists());
    assert_eq!(
        s.call("DELETE", path, Some(&s.admin), None).await.status,
        404
    );
    let again = s
        .call(
            "POST",
            "/api/v1/benchmark/run",
            Some(&s.runner),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert_eq!(again.json()["field"], "adapter");
    // The run that used it still says what it ran.
    let saved = s
        .get(&format!("/api/v1/benchmark/result/{id}"), &s.viewer)
        .await
        .json();
    assert_eq!(saved["result"]["adapter"]["sha256"], sha.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_misplaced_upload_is_refused_with_the_reason() {
    let s = api_support::server(1, 64).await;
    let k = s.runner.clone();
    let not_wasm = upload(&s, Some("junk"), &k, b"\0asm but not really".to_vec()).await;
    assert_eq!(not_wasm.status, 422, "{}", not_wasm.body);
    assert_eq!(not_wasm.json()["field"], "body");
    let json_type = s
        .call("POST", "/api/v1/plugins", Some(&k), Some("{}"))
        .await;
    assert_eq!(json_type.status, 415, "{}", json_type.body);
    assert_eq!(json_type.json()["error"], "not-wasm");
    for bad in ["openai", "x.wasm", ".hidden"] {
        let a = upload(&s, Some(bad), &k, openai_bytes()).await;
        assert_eq!(a.status, 422, "{bad}: {}", a.body);
        assert_eq!(a.json()["field"], "name", "{bad}");
    }
    assert!(
        !s.dir.path().join("plugins").join("index.json").exists(),
        "nothing refused is stored"
    );

    // A recommendation policy uploaded under its own name is not an adapter for a run.
    let policy = std::fs::read(test_guest("bad-policy")).unwrap();
    let a = upload(&s, None, &k, policy).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let up = a.json();
    assert_eq!(up["plugin"]["name"], "bad-policy", "{up}");
    assert_eq!(up["plugin"]["kind"], "recommend", "{up}");
    assert!(up.get("conformance").is_none(), "{up}");
    let run = s
        .call(
            "POST",
            "/api/v1/benchmark/run",
            Some(&k),
            Some(r#"{"server": "http://127.0.0.1:9", "adapter": "bad-policy"}"#),
        )
        .await;
    assert_eq!(run.status, 422, "{}", run.body);
    let refusal = run.json();
    assert_eq!(refusal["field"], "adapter");
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("uploaded recommend plugin"),
        "{refusal}"
    );

    // New bytes under a taken name replace it, and say what they replaced.
    let first = upload(&s, Some("mine"), &k, openai_bytes()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let misbehave = std::fs::read(test_guest("misbehave")).unwrap();
    let second = upload(&s, Some("mine"), &k, misbehave).await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(second.json()["replaced"], sha256(&openai_bytes()));
}
