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
