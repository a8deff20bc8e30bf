//! Fault injection: the configured rate (binomial tolerance), each kind as a client sees it,
//! and the same seed giving the same faults.

use std::time::Duration;

use llm_loadtest_sim::{FaultKind, SimConfig};
use serde_json::{Value, json};

use crate::client::{Reply, post, spawn};

fn faulty(rate: f64, seed: u64) -> SimConfig {
    let mut c = SimConfig::fixed(Duration::from_millis(1), Duration::from_millis(1));
    c.fault_rate = rate;
    c.fault_seed = seed;
    c.stall = Duration::from_millis(300);
    c
}

/// What a client observed, classified without help from the server.
fn observed(r: &Reply) -> Option<FaultKind> {
    if r.status == 500 {
        return Some(FaultKind::Http500);
    }
    assert_eq!(r.status, 200);
    if r.body_error.is_some() {
        // Cut connections (drop or stall) are counted by the caller.
        return None;
    }
    let data = r.sse_data();
    if data
        .iter()
        .any(|d| d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
    {
        return Some(FaultKind::MalformedChunk);
    }
    if data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .any(|v| v.get("error").is_some())
    {
        return Some(FaultKind::ErrorAfter200);
    }
    None
}

async fn run_sequence(
    config: SimConfig,
    n: usize,
) -> (Vec<Option<FaultKind>>, Vec<bool>, Vec<String>) {
    let sim = spawn(config).await;
    let mut kinds = Vec::new();
    let mut cut = Vec::new();
    let mut texts = Vec::new();
    for i in 0..n {
        let body = json!({"prompt": format!("request {i}"), "max_tokens": 4, "ignore_eos": true,
            "stream": true});
        let r = post(sim.local_addr(), "/v1/completions", &body.to_string()).await;
        cut.push(r.body_error.is_some());
        kinds.push(observed(&r));
        texts.push(r.text());
    }
    (kinds, cut, texts)
}

#[tokio::test]
async fn faults_occur_at_the_configured_rate_and_replay_with_the_seed() {
    const N: usize = 300;
    const RATE: f64 = 0.2;
    let config = faulty(RATE, 42);
    let sim = spawn(config.clone()).await;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let addr = sim.local_addr();
            tokio::spawn(async move {
                let body = json!({"prompt": format!("r{i}"), "max_tokens": 4, "ignore_eos": true,
                    "stream": true});
                post(addr, "/v1/completions", &body.to_string()).await
            })
        })
        .collect();
    let mut seen = [0usize; 5];
    let mut cuts = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.body_error.is_some() {
            cuts += 1;
        }
        if let Some(k) = observed(&r) {
            seen[FaultKind::ALL.iter().position(|x| *x == k).unwrap()] += 1;
        }
    }
    let stats = sim.stats();
    let injected = stats.faults_injected as f64;
    // Binomial(300, 0.2): mean 60, sd 6.9; ±5 sd cannot flake (and the draw is seeded).
    let sd = (N as f64 * RATE * (1.0 - RATE)).sqrt();
    assert!(
        (injected - N as f64 * RATE).abs() <= 5.0 * sd,
        "{injected} faults in {N}"
    );
    println!("faults by kind: {:?}", stats.faults_by_kind);
    // What the client saw agrees with what the server says it did.
    let by_kind = |k: FaultKind| {
        stats
            .faults_by_kind
            .iter()
            .find(|(x, _)| *x == k)
            .unwrap()
            .1 as usize
    };
    assert_eq!(seen[0], by_kind(FaultKind::Http500));
    assert_eq!(seen[1], by_kind(FaultKind::ErrorAfter200));
    assert_eq!(seen[4], by_kind(FaultKind::MalformedChunk));
    assert_eq!(
        cuts,
        by_kind(FaultKind::DropMidStream) + by_kind(FaultKind::Stall)
    );
    assert!(
        FaultKind::ALL.iter().all(|k| by_kind(*k) > 0),
        "every kind appears"
    );
    assert_eq!(
        stats.requests_completed as usize,
        N - by_kind(FaultKind::Http500) - by_kind(FaultKind::ErrorAfter200) - cuts
    );

    // The same seed and order give the same faults and the same text; another seed does not.
    let a = run_sequence(faulty(0.3, 7), 40).await;
    let b = run_sequence(faulty(0.3, 7), 40).await;
    let c = run_sequence(faulty(0.3, 8), 40).await;
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    let strip_ids = |texts: &[String]| -> Vec<String> {
        texts
            .iter()
            .map(|t| {
                if !t.starts_with("data:") {
                    return t.clone();
                }
                crate::client::sse_data(t)
                    .iter()
                    .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                    .map(|v| v["choices"][0]["text"].to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(strip_ids(&a.2), strip_ids(&b.2));
    assert!(
        a.0 != c.0 || a.1 != c.1,
        "another fault seed changes the faults"
    );
}

#[tokio::test]
async fn a_stall_holds_the_stream_silent_then_cuts_it() {
    let body = json!({"prompt": "s", "max_tokens": 3, "ignore_eos": true, "stream": true});

    // Held: with an hour-long stall, once the server has begun the stall (it counts the fault
    // as the stall starts) the stream is still open and the client still waiting. Events
    // decide this, not a clock: the stall cannot end while the test runs.
    let mut config = faulty(1.0, 1);
    config.faults = vec![FaultKind::Stall];
    config.stall = Duration::from_secs(3600);
    let sim = spawn(config).await;
    let addr = sim.local_addr();
    let held = {
        let body = body.to_string();
        tokio::spawn(async move { post(addr, "/v1/completions", &body).await })
    };
    let stalls = |s: &llm_loadtest_sim::StatsSnapshot| {
        s.faults_by_kind
            .iter()
            .find(|(k, _)| *k == FaultKind::Stall)
            .map_or(0, |(_, n)| *n)
    };
    // Polled, not slept on: each turn reads the server's own counters.
    let mut stats = sim.stats();
    for _ in 0..10_000 {
        if stalls(&stats) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        stats = sim.stats();
    }
    assert_eq!(stalls(&stats), 1, "the stall began");
    assert!(stats.body_frames > 0, "some tokens went out first");
    assert_eq!(stats.active_streams, 1, "the stalled stream is held open");
    assert!(!held.is_finished(), "the client is still waiting");
    held.abort();

    // Cut: a short stall ends by dropping the connection after the tokens sent before it.
    let mut config = faulty(1.0, 1);
    config.faults = vec![FaultKind::Stall];
    let sim = spawn(config).await;
    let r = post(sim.local_addr(), "/v1/completions", &body.to_string()).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body_error.is_some(),
        "the connection is cut after the stall"
    );
    assert!(!r.frames.is_empty(), "some tokens arrive first");
}

#[tokio::test]
async fn non_streaming_faults() {
    let mut config = faulty(1.0, 1);
    config.faults = vec![FaultKind::MalformedChunk];
    let sim = spawn(config).await;
    let body = json!({"prompt": "s", "max_tokens": 3, "ignore_eos": true});
    let r = post(sim.local_addr(), "/v1/completions", &body.to_string()).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body()).is_err());

    let mut config = faulty(1.0, 1);
    config.faults = vec![FaultKind::DropMidStream];
    let sim = spawn(config).await;
    let r = post(sim.local_addr(), "/v1/completions", &body.to_string()).await;
    assert!(r.body_error.is_some());
    assert!(r.frames.is_empty());
}
