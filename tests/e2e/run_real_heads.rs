//! The hot path's HTTP/1.1 against the bytes real servers send: vLLM's (uvicorn) and
//! llama.cpp's captured response heads (`tests/fixtures/wire/*.headers`, from
//! `../shared/wire`), their captured SSE bodies chunk-encoded one event per chunk as both
//! send them, and llama.cpp's close after every stream while its head advertises keep-alive.
//! Every request completes with the capture's tokens, on as many connections as the server
//! lets the client keep.
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{next_request, run, spec_at};

fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/wire/");
    std::fs::read(format!("{path}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The capture's events as HTTP chunks, then the last chunk.
fn chunked(sse: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(sse);
    let mut out = Vec::new();
    for event in text.split_inclusive("\n\n") {
        out.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Answers every request on `conn` with `head` + `body`; closes after each when `close`.
async fn answer(mut conn: TcpStream, head: Vec<u8>, body: Vec<u8>, close: bool) {
    while next_request(&mut conn).await {
        let mut response = head.clone();
        response.extend_from_slice(&body);
        if conn.write_all(&response).await.is_err() || close {
            return;
        }
    }
}

async fn serve(head: &str, sse: &str, close: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (head, body) = (fixture(head), chunked(&fixture(sse)));
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(answer(conn, head.clone(), body.clone(), close));
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vllm_s_captured_stream_is_read_whole_on_kept_connections() {
    let url = serve(
        "vllm-tiny-completions-stream.headers",
        "vllm-tiny-completions-128.sse",
        false,
    )
    .await;
    let out = run(&spec_at(&url, 2, 8, 128)).await;
    let s = &out.result.levels[0].summary;
    assert_eq!((s.completed, s.failed), (8, 0), "{:?}", s.errors);
    for r in &out.records[0] {
        assert_eq!(r.output_tokens_server, Some(128), "{r:?}");
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
    }
    // uvicorn keeps the connection: two opened, the other six requests reuse them.
    assert_eq!(
        (s.connections.opened, s.connections.reused),
        (2, 6),
        "{:?}",
        s.connections
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_s_captured_stream_and_close_after_it_lose_nothing() {
    let url = serve(
        "llama-tiny-completions-stream.headers",
        "llama-tiny-completions-stream.sse",
        true,
    )
    .await;
    let out = run(&spec_at(&url, 2, 8, 16)).await;
    let s = &out.result.levels[0].summary;
    assert_eq!((s.completed, s.failed), (8, 0), "{:?}", s.errors);
    for r in &out.records[0] {
        assert_eq!(r.output_tokens_server, Some(16), "{r:?}");
    }
    // A fresh connection per request in the end: a reuse the server had closed is found
    // stale or retried, never lost.
    assert_eq!(s.connections.opened, 8, "{:?}", s.connections);
}
