//! Helpers of the API tests: a server on 127.0.0.1:0 over a fresh data directory with one
//! key per role, a plain HTTP client, and a WebSocket reader.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use llm_loadtest::api::guard::{self, Limits};
use llm_loadtest::api::keys::{self, Keys, Role};
use llm_loadtest::api::{self, Api, auth, jobs};
use tokio_tungstenite::tungstenite;

pub struct Server {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub viewer: String,
    pub runner: String,
    pub admin: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A server with a key of each role, `max_runs` at once, loading loopback targets only.
pub async fn server(max_runs: usize, max_concurrency: u32) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (viewer, _) = keys::create(dir.path(), "v", Role::Viewer).unwrap();
    let (runner, _) = keys::create(dir.path(), "r", Role::Runner).unwrap();
    let (admin, _) = keys::create(dir.path(), "a", Role::Admin).unwrap();
    start(dir, max_runs, max_concurrency, [viewer, runner, admin]).await
}

/// A server that never had a key: open, on loopback, as `serve` runs by default.
pub async fn open_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    start(dir, 1, 64, Default::default()).await
}

async fn start(
    dir: tempfile::TempDir,
    max_runs: usize,
    max_concurrency: u32,
    keys: [String; 3],
) -> Server {
    let jobs = Arc::new(jobs::Jobs::new(
        dir.path().to_path_buf(),
        crate::support::runtime(),
        max_runs,
        Duration::from_secs(600),
    ));
    let api = Arc::new(Api::new(
        auth::Gate::new(Keys::new(dir.path()).unwrap(), true),
        Limits {
            targets: guard::loopback(),
            max_concurrency,
            max_run_time: Duration::from_secs(600),
        },
        jobs,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api::serve(listener, api, std::future::pending()));
    Server::at(url, dir, keys)
}

impl Server {
    /// A client of the server at `url` (another process) over `dir`, with its keys.
    pub fn at(url: String, dir: tempfile::TempDir, keys: [String; 3]) -> Server {
        let [viewer, runner, admin] = keys;
        Server {
            url,
            dir,
            viewer,
            runner,
            admin,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `method path` with `key` (if any) and a JSON `body` (if any).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        self.call_typed(method, path, key, body, "application/json")
            .await
    }

    pub async fn call_typed(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        content_type: &str,
    ) -> Answer {
        let body = body.map(|b| b.as_bytes().to_vec());
        self.call_bytes(method, path, key, body, content_type).await
    }

    /// `method path` with `key` (if any) and a `body` (if any) of `content_type`.
    pub async fn call_bytes(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Answer {
        self.call_with(method, path, key, body, content_type, &[])
            .await
    }

    /// [`Server::call_bytes`] with `extra` headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if body.is_some() {
            req = req.header("content-type", content_type);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(60), self.client.request(req))
            .await
            .expect("the API answers within a minute")
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.call("GET", path, Some(key), None).await
    }

    /// `POST path` with no body.
    pub async fn post(&self, path: &str, key: &str) -> Answer {
        self.call("POST", path, Some(key), None).await
    }

    /// Submits a run as the runner; its ID.
    pub async fn submit(&self, body: &str) -> String {
        let a = self
            .call(
                "POST",
                "/api/v1/benchmark/run",
                Some(&self.runner),
                Some(body),
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.body);
        a.json()["id"].as_str().unwrap().to_string()
    }

    /// `/ws/run/{id}`, the key sent as a subprotocol.
    pub async fn watch(&self, id: &str, key: &str) -> Ws {
        use tungstenite::client::IntoClientRequest as _;
        let url = format!("{}/ws/run/{id}", self.url.replacen("http", "ws", 1));
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            format!("llm-loadtest, bearer.{key}").parse().unwrap(),
        );
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("llm-loadtest"),
            "the server selects the protocol, never echoes the key"
        );
        ws
    }

    /// Every frame of `/ws/run/{id}` until the server closes.
    pub async fn frames(&self, id: &str, key: &str) -> Vec<serde_json::Value> {
        let mut ws = self.watch(id, key).await;
        let mut out = Vec::new();
        while let Some(f) = next(&mut ws).await {
            out.push(f);
        }
        out
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads frames until a tick says a request has completed: the run is measuring.
pub async fn until_measuring(ws: &mut Ws) {
    loop {
        let f = next(ws).await.expect("frames until the end");
        if f["kind"] == "tick" && f["completed"].as_u64() > Some(0) {
            return;
        }
    }
}

/// The last frame before the server closes.
pub async fn last(ws: &mut Ws) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    while let Some(f) = next(ws).await {
        last = f;
    }
    last
}

/// The last frame before the server closes, or how the socket broke.
pub async fn last_or_error(ws: &mut Ws) -> Result<serde_json::Value, String> {
    let mut last = serde_json::Value::Null;
    while let Some(f) = try_next(ws).await? {
        last = f;
    }
    Ok(last)
}

/// The next JSON frame, or None once the server has closed.
pub async fn next(ws: &mut Ws) -> Option<serde_json::Value> {
    try_next(ws).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn try_next(ws: &mut Ws) -> Result<Option<serde_json::Value>, String> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(120), ws.next())
            .await
            .expect("a frame within two minutes");
        match next {
            Some(Ok(tungstenite::Message::Text(t))) => {
                return Ok(Some(serde_json::from_str(t.as_str()).unwrap()));
            }
            Some(Ok(tungstenite::Message::Close(_))) | None => {
                let _ = ws.close(None).await;
                return Ok(None);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("websocket: {e}")),
        }
    }
}
