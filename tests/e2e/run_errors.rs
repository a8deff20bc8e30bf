//! Bad servers become classified errors, counted, with the rest measured.
use std::time::Duration;

use llm_loadtest::metrics::ErrorClass;
use llm_loadtest_sim::FaultKind;

use crate::support::{fixed, run, sim, spec};

async fn all_fail_with(kind: FaultKind, timeout: Duration) -> (ErrorClass, String) {
    let mut cfg = fixed(5, 2);
    cfg.fault_rate = 1.0;
    cfg.faults = vec![kind];
    cfg.stall = Duration::from_secs(20);
    let server = sim(cfg).await;
    let mut sp = spec(&server, 2, 4, 8);
    sp.timeout = timeout;
    let out = run(&sp).await;
    let s = &out.result.levels[0].summary;
    assert_eq!(s.failed, 4, "{kind:?}: {:?}", s.errors);
    assert_eq!(s.errors.len(), 1, "{kind:?}: {:?}", s.errors);
    let (class, e) = s.errors.iter().next().unwrap();
    let (class, msg) = (*class, e.first_messages[0].clone());
    // Stalled streams are still open on the server: stop without waiting.
    drop(server);
    (class, msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_has_its_class() {
    // Faults that end the request on their own: only a hung request comes
    // near 5 min.
    let long = Duration::from_secs(300);
    let (c, m) = all_fail_with(FaultKind::Http500, long).await;
    assert_eq!(c, ErrorClass::HttpStatus);
    assert!(m.starts_with("HTTP 500"), "{m}");
    let (c, _) = all_fail_with(FaultKind::ErrorAfter200, long).await;
    assert_eq!(c, ErrorClass::StreamError);
    let (c, m) = all_fail_with(FaultKind::DropMidStream, long).await;
    assert_eq!(c, ErrorClass::StreamError, "{m}");
    let (c, _) = all_fail_with(FaultKind::MalformedChunk, long).await;
    assert_eq!(c, ErrorClass::Parse);
    // Here the timeout must fire, and it can only fire: the server stalls
    // every stream for 20 s, so no loaded machine completes one in 300 ms.
    let (c, m) = all_fail_with(FaultKind::Stall, Duration::from_millis(300)).await;
    assert_eq!(c, ErrorClass::Timeout, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_connect_error() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = sim(fixed(1, 1)).await;
    let mut sp = spec(&server, 2, 3, 2);
    sp.server = format!("http://127.0.0.1:{port}");
    let out = run(&sp).await;
    let s = &out.result.levels[0].summary;
    assert_eq!(s.failed, 3);
    assert_eq!(s.errors[&ErrorClass::Connect].count, 3);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_a_rate_leave_the_rest_measured() {
    let mut cfg = fixed(5, 1);
    cfg.fault_rate = 0.25;
    cfg.fault_seed = 3;
    cfg.faults = vec![
        FaultKind::Http500,
        FaultKind::ErrorAfter200,
        FaultKind::DropMidStream,
    ];
    let server = sim(cfg).await;
    let out = run(&spec(&server, 4, 80, 6)).await;
    let s = &out.result.levels[0].summary;
    assert_eq!(s.requests, 80);
    assert!(s.failed >= 5 && s.failed <= 40, "{} failed", s.failed);
    assert_eq!(s.ttft_ms.count, s.completed);
    let counted: u64 = s.errors.values().map(|e| e.count).sum();
    assert_eq!(counted, s.failed);
    server.shutdown().await.unwrap();
}
