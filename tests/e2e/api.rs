//! `serve`'s API in-process against the simulator: keys and roles on every route, bodies
//! refused with the setting named, a run submitted, followed over its WebSocket, fetched,
//! exported and deleted; cancel and the queue.
use serde_json::{Value, json};

use crate::api_support;
use crate::support;

fn run_body(server: &str, c: u32, bound: Value) -> String {
    let mut body = json!({
        "server": server,
        "model": "sim-llama",
        "concurrency": [c],
        "input-len": 16,
        "output-len": 16,
        "ignore-eos": true,
        "tokenizer": "cl100k_base",
        "tags": ["api-test"],
    });
    for (k, v) in bound.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_a_key_and_a_role_enough_for_it() {
    let s = api_support::server(1, 64).await;
    let health = s.call("GET", "/health", None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    // (method, path, body, the least role)
    let routes: [(&str, &str, Option<&str>, &str); 16] = [
        ("GET", "/metrics", None, "viewer"),
        ("GET", "/api/v1/info", None, "runner"),
        ("POST", "/api/v1/recommend", Some("{}"), "runner"),
        ("GET", "/api/v1/plugins", None, "viewer"),
        ("POST", "/api/v1/plugins", Some("not wasm"), "runner"),
        ("DELETE", "/api/v1/plugins/none", None, "admin"),
        ("GET", "/api/v1/benchmark/history", None, "viewer"),
        ("GET", "/api/v1/benchmark/run/none", None, "viewer"),
        ("GET", "/api/v1/benchmark/result/none", None, "viewer"),
        (
            "GET",
            "/api/v1/benchmark/export/none?format=csv",
            None,
            "viewer",
        ),
        ("GET", "/ws/run/none", None, "viewer"),
        (
            "POST",
            "/api/v1/benchmark/compare",
            Some("{\"ids\": [\"a\"]}"),
            "viewer",
        ),
        ("POST", "/api/v1/benchmark/import", Some("{}"), "runner"),
        (
            "POST",
            "/api/v1/benchmark/run",
            Some("{\"concurrency\": [0]}"),
            "runner",
        ),
        ("POST", "/api/v1/benchmark/run/none/cancel", None, "runner"),
        ("DELETE", "/api/v1/benchmark/run/none", None, "admin"),
    ];
    for (method, path, body, least) in routes {
        let none = s.call(method, path, None, body).await;
        assert_eq!(
            none.status, 401,
            "{method} {path} without a key: {}",
            none.body
        );
        assert_eq!(
            none.headers.get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        let wrong = s.call(method, path, Some("llt_0000"), body).await;
        assert_eq!(wrong.status, 401, "{method} {path} with a wrong key");
        for (key, role) in [
            (&s.viewer, "viewer"),
            (&s.runner, "runner"),
            (&s.admin, "admin"),
        ] {
            let a = s.call(method, path, Some(key), body).await;
            let enough = match least {
                "viewer" => true,
                "runner" => role != "viewer",
                _ => role == "admin",
            };
            if enough {
                assert!(
                    ![401, 403].contains(&a.status),
                    "{method} {path} as {role}: {} {}",
                    a.status,
                    a.body
                );
            } else {
                assert_eq!(a.status, 403, "{method} {path} as {role}: {}", a.body);
                assert!(
                    a.json()["message"].as_str().unwrap().contains(least),
                    "{}",
                    a.body
                );
            }
        }
    }
    // A key revoked while the server runs fails on the next request.
    llm_loadtest::api::keys::revoke(s.dir.path(), "v").unwrap();
    let revoked = s.call("GET", "/metrics", Some(&s.viewer), None).await;
    assert_eq!(revoked.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_submission_names_the_setting_and_why() {
    let s = api_support::server(1, 64).await;
    let post = |body: String| {
        let s = &s;
        async move {
            s.call(
                "POST",
                "/api/v1/benchmark/run",
                Some(&s.runner),
                Some(&body),
            )
            .await
        }
    };
    let cases: [(String, &str, &str); 7] = [
        (
            r#"{"concurrency": "many"}"#.into(),
            "concurrency",
            "invalid type",
        ),
        (
            r#"{"concurency": [4]}"#.into(),
            "concurency",
            "unknown field",
        ),
        (
            run_body("http://10.1.2.3:8000", 1, json!({"num-prompts": 1})),
            "server",
            "10.1.2.3:8000 is not a target",
        ),
        (
            run_body("http://127.0.0.1:1", 65, json!({"num-prompts": 1})),
            "concurrency",
            "over this service's limit of 64",
        ),
        (
            run_body("http://127.0.0.1:1", 1, json!({"output": "/etc/x"})),
            "output",
            "file on the service's machine",
        ),
        (
            run_body(
                "http://127.0.0.1:1",
                1,
                json!({"adapter": "/tmp/evil.wasm"}),
            ),
            "adapter",
            "file on the service's machine",
        ),
        (
            run_body("http://127.0.0.1:1", 1, json!({"duration": "0s"})),
            "duration",
            "above zero",
        ),
    ];
    for (body, field, reason) in cases {
        let a = post(body.clone()).await;
        assert_eq!(a.status, 422, "{body}: {}", a.body);
        let j = a.json();
        assert_eq!(j["field"], field, "{body}: {}", a.body);
        assert!(
            j["reason"].as_str().unwrap().contains(reason),
            "{body}: {}",
            a.body
        );
    }
    let syntax = post("{\"server\": ".into()).await;
    assert_eq!(syntax.status, 400, "{}", syntax.body);
    let plain = s
        .call_typed(
            "POST",
            "/api/v1/benchmark/run",
            Some(&s.runner),
            Some("{}"),
            "text/plain",
        )
        .await;
    assert_eq!(
        plain.status, 415,
        "a form post cannot start a run: {}",
        plain.body
    );
    // A body over the limit: the refusal comes while the client is still writing, and the
    // close after it can break that write; the status is read beside the write, not after.
    let huge = status_while_writing(
        &s,
        "POST /api/v1/benchmark/run",
        format!("{{\"tags\": [\"{}\"]}}", "x".repeat(2 << 20)),
    )
    .await;
    assert_eq!(huge, 413, "bodies are limited");
    let history = s
        .call(
            "GET",
            "/api/v1/benchmark/history?limit=0",
            Some(&s.viewer),
            None,
        )
        .await;
    assert_eq!(history.status, 422);
    assert_eq!(history.json()["field"], "limit");
}

/// Progress frames of one level never go back: counts only grow, and nothing of a level
/// comes after its `level-finished`.
fn check_order(frames: &[Value]) {
    assert_eq!(frames[0]["event"], "snapshot", "{:?}", frames[0]);
    let last = frames.last().unwrap();
    assert_eq!(last["event"], "finished", "{last}");
    let mut sent = 0;
    let mut done_levels = Vec::new();
    for f in &frames[1..frames.len() - 1] {
        assert_eq!(f["event"], "progress", "{f}");
        let level = f["level"].as_str().unwrap_or_default().to_string();
        assert!(
            !done_levels.contains(&level),
            "a frame after its level ended: {f}"
        );
        match f["kind"].as_str() {
            Some("level-started") => sent = 0,
            Some("tick") | Some("level-finished") => {
                let now = f["sent"].as_u64().unwrap();
                assert!(now >= sent, "sent went back: {f}");
                sent = now;
                if f["kind"] == "level-finished" {
                    done_levels.push(level);
                }
            }
            other => panic!("unknown progress kind {other:?}: {f}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_http_is_followed_live_then_fetched_exported_and_deleted() {
    let sim = support::sim(support::fixed(20, 10)).await;
    let s = api_support::server(1, 64).await;
    let body = run_body(
        &format!("http://{}", sim.local_addr()),
        4,
        json!({"num-prompts": 40}),
    );
    let a = s
        .call(
            "POST",
            "/api/v1/benchmark/run",
            Some(&s.runner),
            Some(&body),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        a.headers.get("location").unwrap().to_str().unwrap(),
        format!("/api/v1/benchmark/run/{id}")
    );
    let frames = s.frames(&id, &s.viewer).await;
    check_order(&frames);
    let last = frames.last().unwrap();
    assert_eq!(last["status"], "complete", "{last}");
    assert_eq!(last["result"]["levels"][0]["summary"]["completed"], 40);
    assert!(
        frames.iter().any(|f| f["kind"] == "tick"),
        "live numbers while it ran: {frames:?}"
    );

    // A client that comes after the end gets the snapshot and the end.
    let late = s.frames(&id, &s.viewer).await;
    assert_eq!(late.len(), 2, "{late:?}");
    assert_eq!(late[0]["status"], "complete");
    assert_eq!(late[0]["finished"].as_array().unwrap().len(), 1);
    assert_eq!(late[1]["event"], "finished");

    let v = &s.viewer;
    let status = s.get(&format!("/api/v1/benchmark/run/{id}"), v).await;
    assert_eq!(status.json()["status"], "complete", "{}", status.body);
    let result = s
        .get(&format!("/api/v1/benchmark/result/{id}?records=true"), v)
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    let r = result.json();
    assert_eq!(r["status"], "complete");
    assert_eq!(
        r["result"]["levels"][0]["requests"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
    let history = s
        .get("/api/v1/benchmark/history?tag=api-test&model=sim", v)
        .await
        .json();
    assert_eq!(history["total"], 1, "{history}");
    assert_eq!(history["runs"][0]["id"], id.as_str());
    assert_eq!(history["runs"][0]["completed"], 40);
    let csv = s
        .get(&format!("/api/v1/benchmark/export/{id}?format=csv"), v)
        .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    assert!(csv.body.lines().nth(1).unwrap().starts_with(&id));
    let html = s
        .get(&format!("/api/v1/benchmark/export/{id}?format=html"), v)
        .await;
    assert!(html.body.contains("<svg"), "the report with its charts");
    let second = s
        .submit(&run_body(
            &format!("http://{}", sim.local_addr()),
            2,
            json!({"num-prompts": 20}),
        ))
        .await;
    let done = s.frames(&second, v).await;
    assert_eq!(done.last().unwrap()["status"], "complete", "{done:?}");
    let ids = json!({"ids": [id, second]}).to_string();
    let cmp = s
        .call("POST", "/api/v1/benchmark/compare", Some(v), Some(&ids))
        .await;
    assert_eq!(cmp.status, 200, "{}", cmp.body);
    let cmp = cmp.json();
    assert_eq!(cmp["comparison"]["ids"], json!([id, second]));
    let rows = cmp["comparison"]["levels"][0]["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["values"].as_array().unwrap().len() == 2),
        "each figure for both runs: {rows:?}"
    );
    assert!(cmp["report"]["sections"].as_array().unwrap().len() > 2);
    let html_ids = json!({"ids": [id, second], "format": "html"}).to_string();
    let page = s
        .call(
            "POST",
            "/api/v1/benchmark/compare",
            Some(v),
            Some(&html_ids),
        )
        .await;
    assert!(page.body.contains("<svg"), "the comparison with its charts");
    // What export writes, import takes back as a new run.
    let exported = s
        .get(&format!("/api/v1/benchmark/export/{id}?format=json"), v)
        .await
        .body;
    let imported = s
        .call(
            "POST",
            "/api/v1/benchmark/import?name=first.json&tag=imported",
            Some(&s.runner),
            Some(&exported),
        )
        .await;
    assert_eq!(imported.status, 201, "{}", imported.body);
    let copy = imported.json()["id"].as_str().unwrap().to_string();
    assert_ne!(copy, id);
    let listed = s
        .get("/api/v1/benchmark/history?tag=imported", v)
        .await
        .json();
    assert_eq!(listed["runs"][0]["id"], copy.as_str(), "{listed}");
    assert_eq!(listed["runs"][0]["completed"], 40);
    let garbage = s
        .call(
            "POST",
            "/api/v1/benchmark/import",
            Some(&s.runner),
            Some("{\"not\": \"a result\"}"),
        )
        .await;
    assert_eq!(garbage.status, 422, "{}", garbage.body);
    assert_eq!(garbage.json()["field"], "body");
    let metrics = s.get("/metrics", v).await.body;
    for line in [
        "llm_loadtest_runs{status=\"complete\"} 2",
        "llm_loadtest_requests_completed_total 60",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }

    let del = s
        .call(
            "DELETE",
            &format!("/api/v1/benchmark/run/{id}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(del.status, 204, "{}", del.body);
    let gone = s.get(&format!("/api/v1/benchmark/result/{id}"), v).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_beyond_the_limit_queue_and_a_cancel_keeps_what_was_measured() {
    let sim = support::sim(support::fixed(20, 10)).await;
    let s = api_support::server(1, 64).await;
    let body = run_body(
        &format!("http://{}", sim.local_addr()),
        2,
        json!({"duration": "10m"}),
    );
    let first = s.submit(&body).await;
    let second = s.submit(&body).await;
    let mut ws = s.watch(&first, &s.viewer).await;
    api_support::until_measuring(&mut ws).await;
    let v = &s.viewer;
    let queued = s
        .get(&format!("/api/v1/benchmark/run/{second}"), v)
        .await
        .json();
    assert_eq!(queued["status"], "queued", "one run at a time: {queued}");
    let cancel = |id: &str| format!("/api/v1/benchmark/run/{id}/cancel");
    let c = s.post(&cancel(&first), &s.runner).await;
    assert_eq!(c.status, 202, "{}", c.body);
    let last = api_support::last(&mut ws).await;
    assert_eq!(last["event"], "finished", "{last}");
    assert_eq!(last["status"], "cancelled", "{last}");
    assert!(last["result"]["levels"][0]["summary"]["completed"].as_u64() > Some(0));
    let stored = s
        .get(&format!("/api/v1/benchmark/result/{first}"), v)
        .await
        .json();
    assert_eq!(
        stored["status"], "interrupted",
        "kept, as stopped early: {stored}"
    );
    // The queued run starts once the first has ended; cancelling it ends it either way.
    let c2 = s.post(&cancel(&second), &s.runner).await;
    assert_eq!(c2.status, 202, "{}", c2.body);
    let end = s.frames(&second, v).await;
    assert_eq!(end.last().unwrap()["status"], "cancelled", "{end:?}");
    let again = s.post(&cancel(&second), &s.runner).await;
    assert_eq!(again.status, 409, "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_in_the_openapi_document_and_every_documented_route_answers() {
    let s = api_support::server(1, 64).await;
    let doc = s.get("/api/v1/openapi.json", &s.viewer).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // What this server serves; a route added without its document entry fails here.
    let served = [
        ("get", "/"),
        ("get", "/ui/app.js"),
        ("get", "/ui/app.css"),
        ("get", "/health"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
        ("post", "/api/v1/benchmark/run"),
        ("get", "/api/v1/benchmark/run/{id}"),
        ("delete", "/api/v1/benchmark/run/{id}"),
        ("post", "/api/v1/benchmark/run/{id}/cancel"),
        ("get", "/api/v1/benchmark/result/{id}"),
        ("get", "/api/v1/benchmark/history"),
        ("get", "/api/v1/benchmark/export/{id}"),
        ("post", "/api/v1/benchmark/compare"),
        ("post", "/api/v1/benchmark/import"),
        ("post", "/api/v1/recommend"),
        ("get", "/api/v1/info"),
        ("get", "/api/v1/plugins"),
        ("post", "/api/v1/plugins"),
        ("delete", "/api/v1/plugins/{name}"),
        ("get", "/ws/run/{id}"),
    ];
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    for (method, path) in served {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is missing from the document"
        );
    }
    for (method, path) in &documented {
        let url = path.replace("{id}", "none").replace("{name}", "none");
        let body = (method == "post").then_some("{}");
        let a = s
            .call(&method.to_uppercase(), &url, Some(&s.admin), body)
            .await;
        // The router's own "no such route" is an empty 404 or a 405; ours say why in JSON.
        assert!(
            a.status != 405 && !(a.status == 404 && a.body.is_empty()),
            "{method} {path} is documented but not served: {} {}",
            a.status,
            a.body
        );
    }
    assert_eq!(
        documented.len(),
        served.len(),
        "documented but not listed here: {documented:?}"
    );
}

/// Sends `line` (method and path) with the runner's key and a JSON `body`, reading the status
/// the server answers with while the body is still being written (a failed write is not
/// the answer).
async fn status_while_writing(s: &api_support::Server, line: &str, body: String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.url.trim_start_matches("http://").to_string();
    let conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rx, mut tx) = conn.into_split();
    let request = format!(
        "{line} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        s.runner,
        body.len()
    );
    let writer = tokio::spawn(async move {
        let _ = tx.write_all(request.as_bytes()).await;
        tx
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = rx.read(&mut chunk).await.unwrap_or(0);
        assert!(n > 0, "no answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..n]);
    }
    writer.abort();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {text}"))
}

/// A server that wants its own key: one short stream per POST with `Bearer target-secret`,
/// 401 otherwise; the keys it saw, in order.
async fn keyed_target() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let stream = "data: {\"choices\":[{\"index\":0,\"text\":\"hi\",\"finish_reason\":null}]}\n\n\
                  data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}],\
                  \"usage\":{\"prompt_tokens\":8,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
    let app = axum::Router::new().fallback(axum::routing::post(move |h: HeaderMap| {
        let log = log.clone();
        async move {
            let auth = h
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let ok = auth == "Bearer target-secret";
            log.lock().unwrap().push(auth);
            if ok {
                (
                    StatusCode::OK,
                    [("content-type", "text/event-stream")],
                    stream,
                )
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    [("content-type", "text/plain")],
                    "",
                )
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targets_own_key_goes_beside_the_settings_and_is_never_stored() {
    let (target, seen) = keyed_target().await;
    let s = api_support::server(1, 64).await;
    let body = run_body(&target, 1, json!({"num-prompts": 3, "output-len": 1}));
    for (key, completed) in [(Some("target-secret"), Some(3)), (None, None)] {
        let extra: Vec<(&str, &str)> = key
            .map(|k| ("llm-loadtest-target-key", k))
            .into_iter()
            .collect();
        let a = s
            .call_with(
                "POST",
                "/api/v1/benchmark/run",
                Some(&s.runner),
                Some(body.as_bytes().to_vec()),
                "application/json",
                &extra,
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.body);
        let id = a.json()["id"].as_str().unwrap().to_string();
        let frames = s.frames(&id, &s.viewer).await;
        let last = frames.last().unwrap();
        match completed {
            Some(n) => assert_eq!(
                last["result"]["levels"][0]["summary"]["completed"], n,
                "{last}"
            ),
            // Without it the server's 401 stops the run at its pre-flight request.
            None => {
                assert_eq!(last["status"], "failed", "{last}");
                assert!(
                    last["reason"].as_str().unwrap().contains("HTTP 401"),
                    "{last}"
                );
            }
        }
        let saved = s
            .get(
                &format!("/api/v1/benchmark/result/{id}?records=true"),
                &s.viewer,
            )
            .await;
        assert!(
            !saved.body.contains("target-secret"),
            "stored: {}",
            saved.body
        );
    }
    // Nowhere in the data directory either: journal, store, keys.
    let mut dirs = vec![s.dir.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(13).any(|w| w == b"target-secret"),
                    "{} holds the key",
                    p.display()
                );
            }
        }
    }
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.contains(&"Bearer target-secret".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&String::new()),
        "the second run sent no key: {seen:?}"
    );
}
