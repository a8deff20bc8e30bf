//! `recommend` and `info` over the API: a search submitted as JSON runs as a job (its probes
//! as levels over the WebSocket) and is saved as one run carrying the recommendation; its
//! settings are refused by name, `run`'s under `run.`; `info` asks an allowed server only.
use serde_json::{Value, json};

use crate::api_support;
use crate::support;

fn search(server: &str) -> Value {
    json!({
        "peak-concurrency": 10,
        "max-probe-concurrency": 2,
        "goodput-target": 80,
        "policy-options": ["min-requests=8"],
        "run": {
            "server": server,
            "adapter": "vllm",
            "model": "m",
            "input-len": 8,
            "output-len": 2,
            "ignore-eos": true,
            "tokenizer": "cl100k_base",
            "slo": "ttft:10s",
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_over_http_is_followed_probe_by_probe_and_saved_with_its_answer() {
    let sim = support::sim(support::fixed(2, 1)).await;
    let s = api_support::server(1, 64).await;
    let body = search(&format!("http://{}", sim.local_addr())).to_string();
    let a = s
        .call("POST", "/api/v1/recommend", Some(&s.runner), Some(&body))
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_string();
    assert_eq!(a.json()["work"], "recommend");
    let frames = s.frames(&id, &s.viewer).await;
    let probes: Vec<&str> = frames
        .iter()
        .filter(|f| f["kind"] == "level-finished")
        .map(|f| f["level"].as_str().unwrap_or("?"))
        .collect();
    assert!(!probes.is_empty(), "each probe is a level: {frames:?}");
    let last = frames.last().unwrap();
    assert_eq!(last["status"], "complete", "{last}");
    let rec = &last["result"]["recommendation"];
    assert_eq!(rec["per_replica"], 2, "{rec}");
    assert_eq!(rec["at_least"], true, "{rec}");
    assert_eq!(rec["replicas"], 5, "{rec}");
    assert_eq!(
        last["result"]["levels"].as_array().unwrap().len(),
        probes.len(),
        "every probe followed live is a saved level"
    );
    let saved = s
        .get(&format!("/api/v1/benchmark/result/{id}"), &s.viewer)
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.json()["result"]["recommendation"]["replicas"], 5);
    let status = s
        .get(&format!("/api/v1/benchmark/run/{id}"), &s.viewer)
        .await;
    assert_eq!(status.json()["status"], "complete", "{}", status.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_search_names_its_setting() {
    let s = api_support::server(1, 64).await;
    let base = search("http://127.0.0.1:9");
    let refused = |edit: &dyn Fn(&mut Value)| {
        let mut b = base.clone();
        edit(&mut b);
        b.to_string()
    };
    let cases: [(&str, String); 7] = [
        (
            "peak-concurrency",
            refused(&|b| {
                b.as_object_mut().unwrap().remove("peak-concurrency");
            }),
        ),
        (
            "run.concurrency",
            refused(&|b| b["run"]["concurrency"] = json!([4])),
        ),
        (
            "run.slo",
            refused(&|b| {
                b["run"].as_object_mut().unwrap().remove("slo");
            }),
        ),
        (
            "max-probe-concurrency",
            refused(&|b| b["max-probe-concurrency"] = json!(5000)),
        ),
        (
            "max-duration",
            refused(&|b| b["max-duration"] = json!("2h")),
        ),
        ("policy", refused(&|b| b["policy"] = json!("nope"))),
        (
            "run.server",
            refused(&|b| b["run"]["server"] = json!("http://10.1.2.3:8000")),
        ),
    ];
    for (field, body) in cases {
        let a = s
            .call("POST", "/api/v1/recommend", Some(&s.runner), Some(&body))
            .await;
        assert_eq!(a.status, 422, "{field}: {}", a.body);
        assert_eq!(a.json()["field"], field, "{}", a.body);
    }
    let viewer = s
        .call(
            "POST",
            "/api/v1/recommend",
            Some(&s.viewer),
            Some(&base.to_string()),
        )
        .await;
    assert_eq!(viewer.status, 403, "{}", viewer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_over_http_asks_an_allowed_server_and_describes_this_machine() {
    let sim = support::sim(support::fixed(1, 1)).await;
    let s = api_support::server(1, 64).await;
    let url = format!("http://{}", sim.local_addr());
    let a = s
        .get(&format!("/api/v1/info?server={url}"), &s.runner)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert!(
        v["server"]["version"]
            .as_str()
            .unwrap()
            .starts_with("vLLM "),
        "{v}"
    );
    assert_eq!(v["server"]["models"][0]["id"], "sim-llama");
    assert!(v["host"]["cpus"].as_u64().unwrap() >= 1, "{v}");
    let far = s
        .get("/api/v1/info?server=http://10.1.2.3:8000", &s.runner)
        .await;
    assert_eq!(far.status, 422, "{}", far.body);
    assert_eq!(far.json()["field"], "server");
    let none = s.get("/api/v1/info", &s.runner).await;
    assert_eq!(none.status, 422, "{}", none.body);
    assert_eq!(s.get("/api/v1/info", &s.viewer).await.status, 403);
}
