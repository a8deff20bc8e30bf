//! A minimal HTTP/1.1 test client: one connection per request, every body frame timestamped
//! on arrival. Test code only; the simulator must not share the load engine's client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use llm_loadtest_sim::{SimConfig, SimHandle};

/// Starts a simulator on 127.0.0.1 with an OS-chosen port.
pub async fn spawn(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    llm_loadtest_sim::start(config, listener).await.unwrap()
}

/// What came back, with arrival times.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// Instant just before the request was written.
    pub sent_at: Instant,
    /// Body frames as they arrived.
    pub frames: Vec<(Instant, Bytes)>,
    /// Set when the body ended with an error (connection cut).
    pub body_error: Option<String>,
}

impl Reply {
    pub fn body(&self) -> Vec<u8> {
        self.frames
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body()).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body()).unwrap()
    }

    /// SSE `data:` payloads, in order.
    pub fn sse_data(&self) -> Vec<String> {
        sse_data(&self.text())
    }

    /// Time from sending to the first body frame.
    pub fn first_frame_after_send(&self) -> Option<Duration> {
        self.frames.first().map(|(t, _)| *t - self.sent_at)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Splits an SSE body into its `data:` payloads (with or without the space after the colon).
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let e = e
                .strip_prefix("data:")
                .unwrap_or_else(|| panic!("not an SSE data event: {e:?}"));
            e.strip_prefix(' ').unwrap_or(e).to_owned()
        })
        .collect()
}

/// An open HTTP/1.1 connection, ready for one request.
pub struct Conn {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// Opens a connection (TCP and HTTP/1.1 handshake).
pub async fn connect(addr: SocketAddr) -> Conn {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Conn { addr, sender }
}

impl Conn {
    /// Sends one request and reads the whole response, timestamping every body frame.
    pub async fn send(self, method: &str, path: &str, body: &str) -> Reply {
        self.send_observed(method, path, body, || {}).await
    }

    /// As [`Conn::send`], calling `on_first_frame` when the first body frame arrives.
    pub async fn send_observed(
        mut self,
        method: &str,
        path: &str,
        body: &str,
        on_first_frame: impl FnOnce(),
    ) -> Reply {
        let mut on_first_frame = Some(on_first_frame);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let sent_at = Instant::now();
        let response = match self.sender.send_request(request).await {
            Ok(r) => r,
            // The server cut the connection before any response byte (a fault on purpose).
            Err(e) => {
                return Reply {
                    status: 0,
                    headers: http::HeaderMap::new(),
                    sent_at,
                    frames: Vec::new(),
                    body_error: Some(e.to_string()),
                };
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        let mut frames = Vec::new();
        let mut body_error = None;
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    let at = Instant::now();
                    if let Ok(data) = frame.into_data() {
                        frames.push((at, data));
                        if let Some(f) = on_first_frame.take() {
                            f();
                        }
                    }
                }
                Some(Err(e)) => {
                    body_error = Some(e.to_string());
                    break;
                }
            }
        }
        Reply {
            status,
            headers,
            sent_at,
            frames,
            body_error,
        }
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub async fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    connect(addr).await.send(method, path, body).await
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    send(addr, "POST", path, body).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, "GET", path, "").await
}

/// The keys of a JSON object, sorted, for shape comparisons.
pub fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}
