//! Starting, observing and stopping the simulator.

use std::time::Duration;

use llm_loadtest_sim::SimConfig;
use serde_json::json;

use crate::client::{connect, post, spawn};

#[tokio::test]
async fn graceful_shutdown_lets_streams_in_flight_finish() {
    let sim = spawn(SimConfig::fixed(
        Duration::from_millis(20),
        Duration::from_millis(20),
    ))
    .await;
    let addr = sim.local_addr();
    let conn = connect(addr).await;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let stream = tokio::spawn(async move {
        let body = json!({"prompt": "a", "max_tokens": 5, "ignore_eos": true, "stream": true});
        conn.send_observed("POST", "/v1/completions", &body.to_string(), move || {
            let _ = started_tx.send(());
        })
        .await
    });
    started_rx.await.unwrap();
    let s = sim.stats();
    assert_eq!(s.active_streams, 1);
    assert_eq!(s.requests_received, 1);
    sim.shutdown().await.unwrap();
    let reply = stream.await.unwrap();
    assert!(reply.body_error.is_none());
    assert!(reply.text().ends_with("data: [DONE]\n\n"));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn stats_count_requests_tokens_and_frames() {
    let sim = spawn(SimConfig::fixed(Duration::from_millis(1), Duration::ZERO)).await;
    for _ in 0..3 {
        let body =
            json!({"prompt": "one two", "max_tokens": 4, "ignore_eos": true, "stream": true});
        post(sim.local_addr(), "/v1/completions", &body.to_string()).await;
    }
    let s = sim.stats();
    assert_eq!(s.requests_received, 3);
    assert_eq!(s.requests_completed, 3);
    assert_eq!(s.tokens_generated, 12);
    assert_eq!(s.prompt_tokens, 6);
    assert_eq!(
        s.body_frames, 15,
        "4 token frames and 1 trailer per request"
    );
    assert_eq!(s.active_streams, 0);
    assert_eq!(s.faults_injected, 0);
    assert_eq!(s.first_token_lateness.count, 3);
}

#[tokio::test]
async fn inconsistent_configurations_are_refused_at_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = SimConfig::with_profile("h100-llama3-8b");
    config.ttft = Some(Duration::from_millis(5));
    assert!(llm_loadtest_sim::start(config, listener).await.is_err());
}

/// `--keep-alive-idle` closes a connection once it has carried no request for the timeout,
/// as uvicorn does, and never while a request is in flight, however much slower than the
/// timeout it is: here 20 ms against a 200 ms first token. Each connection carries one
/// request, then the test reads until the server closes it (an event, not a wait on time;
/// the watchdog only turns a connection that is never closed into a failure).
#[tokio::test]
async fn keep_alive_idle_closes_idle_connections_and_never_a_slow_request() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = SimConfig::fixed(Duration::from_millis(200), Duration::from_millis(30));
    config.keep_alive_idle = Some(Duration::from_millis(20));
    let sim = spawn(config).await;
    let addr = sim.local_addr();
    for (n, stream) in [(1, true), (2, false)] {
        let body = json!({"prompt": "a", "max_tokens": 3, "ignore_eos": true, "stream": stream})
            .to_string();
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(format!("{head}{body}").as_bytes())
            .await
            .unwrap();
        let mut bytes = Vec::new();
        tokio::time::timeout(Duration::from_secs(120), tcp.read_to_end(&mut bytes))
            .await
            .expect("the idle connection is closed")
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        if stream {
            assert!(text.ends_with("data: [DONE]\n\n\r\n0\r\n\r\n"), "{text}");
        } else {
            let json_body = &text[text.find("\r\n\r\n").unwrap() + 4..];
            let v: serde_json::Value = serde_json::from_str(json_body).unwrap();
            assert_eq!(v["usage"]["completion_tokens"], 3, "{text}");
        }
        let s = sim.stats();
        assert_eq!(s.requests_completed, n);
        assert_eq!(s.connections_idle_closed, n, "closed by the idle timer");
    }
    sim.shutdown().await.unwrap();
}
