//! What the engine's own connection handling may never do: lose a request the server never
//! saw, open more connections than requests in flight, or call a send failure a stream error.
//! And what the flags ask is what is sent, or the run says so.
use llm_loadtest::metrics::ErrorClass;
use llm_loadtest::runner::{self, RunError};
use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::support::{fixed, run, runtime, sim, spec, spec_at};

/// llama.cpp closes the connection right after every streamed response while advertising
/// keep-alive: every request must still reach the server exactly once and succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_after_every_stream_loses_no_request() {
    let mut cfg = fixed(2, 1);
    cfg.close_after_stream = true;
    let server = sim(cfg).await;
    let out = run(&spec(&server, 4, 60, 8)).await;
    let s = &out.result.levels[0].summary;
    let stats = each_served_once(s, &server, 60);
    assert_eq!(
        stats.connections_accepted, 60,
        "a fresh connection for every request"
    );
    assert_eq!(s.connections.opened, 60, "{:?}", s.connections);
    // Every reused connection had been closed by the server, so each one reused died
    // unanswered and was retried; after LEARN_AFTER of those the pool stops reusing.
    // (Whether a close is seen before reuse, `stale`, or after, `retries`, is a race.)
    assert_eq!(
        s.connections.retries, s.connections.reused,
        "{:?}",
        s.connections
    );
    assert!(
        s.connections.retries <= llm_loadtest::engine::connection::LEARN_AFTER + 3,
        "the pool kept reusing: {:?}",
        s.connections
    );
    assert!(out.records[0].iter().all(|r| r.output_tokens == 8));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_never_outnumber_the_requests_in_flight() {
    let server = sim(fixed(2, 1)).await;
    let out = run(&spec(&server, 4, 60, 4)).await;
    let s = &out.result.levels[0].summary;
    assert_eq!(s.failed, 0, "{:?}", s.errors);
    let stats = server.stats();
    assert!(
        stats.connections_peak <= 4 && stats.connections_accepted <= 4,
        "{} accepted, {} at once, for concurrency 4",
        stats.connections_accepted,
        stats.connections_peak
    );
    assert_eq!(s.connections.opened, stats.connections_accepted);
    assert_eq!(s.connections.reused + s.connections.opened, 60);
    assert_eq!(s.connections.retries, 0);
    server.shutdown().await.unwrap();
}

/// uvicorn (vLLM's HTTP server) closes a connection idle for 5 s; the simulator's
/// `--keep-alive-idle` does the same at 5 ms, against requests arriving about every 20 ms, so
/// most idle connections the pool holds are closed under it, some just as it reuses one.
/// Whichever way each race goes (seen closed before reuse, or retried after), every request
/// reaches the server exactly once and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_idle_connections_loses_no_request() {
    let mut cfg = fixed(2, 1);
    cfg.keep_alive_idle = Some(std::time::Duration::from_millis(5));
    let server = sim(cfg).await;
    let mut sp = spec(&server, 2, 40, 4);
    sp.levels[0].load = llm_loadtest::plan::Load::Rate {
        rate: 50.0,
        burstiness: 1.0,
        max_concurrency: Some(2),
    };
    let out = run(&sp).await;
    let s = &out.result.levels[0].summary;
    let stats = each_served_once(s, &server, 40);
    assert_eq!(s.connections.opened, stats.connections_accepted);
    // A retried request used two connections: the reused one that died and a fresh one.
    assert_eq!(
        s.connections.reused + s.connections.opened,
        40 + s.connections.retries,
        "{:?}",
        s.connections
    );
    server.shutdown().await.unwrap();
}

/// A server that reads each request and hangs up without a byte of answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_connection_closed_unanswered_is_a_send_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hang_up = tokio::spawn(async move {
        for _ in 0..3 {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
        }
    });
    let out = run(&spec_at(&format!("http://{addr}"), 1, 3, 4)).await;
    let s = &out.result.levels[0].summary;
    assert_eq!(s.failed, 3);
    assert_eq!(s.errors[&ErrorClass::Send].count, 3, "{:?}", s.errors);
    assert!(out.records[0].iter().all(|r| r.connection.retries == 0));
    hang_up.await.unwrap();
}

/// All `n` requests succeeded, each reaching the server exactly once; the server's stats.
fn each_served_once(
    s: &llm_loadtest::metrics::LevelSummary,
    server: &llm_loadtest_sim::SimHandle,
    n: u64,
) -> llm_loadtest_sim::StatsSnapshot {
    assert_eq!((s.completed, s.failed), (n, 0), "{:?}", s.errors);
    let stats = server.stats();
    assert_eq!(
        stats.requests_received, n,
        "each request reached the server once"
    );
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_the_adapter_cannot_send_refuses_the_run_naming_one_that_can() {
    let server = sim(fixed(1, 1)).await;
    let mut sp = spec(&server, 1, 2, 4);
    sp.adapter = "ollama".into();
    let (tx, _rx) = broadcast::channel(16);
    let refused = runner::execute(&sp, &runtime(), tx, CancellationToken::new()).await;
    let Err(RunError::Unsupported(message)) = refused else {
        panic!(
            "--ignore-eos through ollama ran: {:?}",
            refused.map(|o| o.result.settings)
        );
    };
    assert!(message.contains("--ignore-eos"), "{message}");
    assert!(message.contains("--adapter vllm"), "{message}");
    assert!(message.contains("--allow-unsupported"), "{message}");

    sp.allow_unsupported = true;
    let out = run(&sp).await;
    assert_eq!(out.result.settings.unsupported, ["--ignore-eos"]);

    // The generic adapter sends ignore_eos when asked, and the result says it was sent.
    sp.adapter = "openai".into();
    sp.allow_unsupported = false;
    let out = run(&sp).await;
    assert!(out.result.settings.ignore_eos);
    assert!(out.result.settings.unsupported.is_empty());
    assert!(out.records[0].iter().all(|r| r.output_tokens == 4));
    // Asked for nothing, sent nothing.
    sp.ignore_eos = false;
    let out = run(&sp).await;
    assert!(!out.result.settings.ignore_eos);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_the_server_served_is_recorded_and_a_mismatch_noted() {
    let mut cfg = fixed(1, 1);
    cfg.own_model_name = true;
    let server = sim(cfg).await;
    let mut sp = spec(&server, 1, 2, 4);
    sp.model = Some("nope".into());
    let out = run(&sp).await;
    assert_eq!(out.result.settings.model, "nope");
    assert_eq!(
        out.result.settings.served_model.as_deref(),
        Some("sim-llama")
    );
    let notes = llm_loadtest::report::table::notes(&out.result);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("served model `sim-llama`, not `nope`")),
        "{notes:?}"
    );
    sp.model = Some("sim-llama".into());
    let out = run(&sp).await;
    let notes = llm_loadtest::report::table::notes(&out.result);
    assert!(
        !notes.iter().any(|n| n.contains("served model")),
        "{notes:?}"
    );
    server.shutdown().await.unwrap();
}

/// Each run records where its arrival times came from: the kernel's receive timestamps on
/// Linux (plain TCP), the clock when asked for it (and elsewhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_records_where_its_arrival_times_came_from() {
    let server = sim(fixed(2, 1)).await;
    let mut sp = spec(&server, 2, 6, 4);
    let stamped = run(&sp).await;
    let said = stamped
        .result
        .settings
        .arrival_times
        .clone()
        .unwrap_or_default();
    // Linux turns stamping on for the whole stack a moment after the first socket asks, so
    // a run's first reads may come unstamped: then the share is said.
    let expected = if cfg!(target_os = "linux") {
        "kernel receive timestamps"
    } else {
        "the clock read after each read"
    };
    assert!(said.starts_with(expected), "{said}");
    sp.kernel_timestamps = false;
    let clocked = run(&sp).await;
    assert_eq!(
        clocked.result.settings.arrival_times.as_deref(),
        Some("the clock read after each read")
    );
    // Both time the same server the same way, within the simulator's clock.
    for out in [&stamped, &clocked] {
        let s = &out.result.levels[0].summary;
        assert_eq!(s.completed, 6, "{:?}", s.errors);
    }
    server.shutdown().await.unwrap();
}

/// A client too busy to read on time says so: a task that holds the (single-threaded)
/// runtime 20 ms at a time makes every ready read wait that long, and the level is marked
/// client-limited in the result and the table with the figure. (That a calm level is not
/// marked is the unit tests' to check: the CPU figure is this whole test process's, which
/// runs other tests beside this one.)
#[tokio::test]
async fn a_level_the_client_was_too_busy_for_is_marked_client_limited() {
    let server = sim(fixed(2, 1)).await;
    let sp = spec(&server, 2, 10, 4);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hog = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let held = std::time::Instant::now();
                while held.elapsed() < std::time::Duration::from_millis(20) {
                    std::hint::spin_loop();
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let busy = run(&sp).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hog.await.unwrap();
    let c = busy.result.levels[0].client.clone().expect("measured");
    // The verdict, and the figure it names, not a bound on how late this machine was.
    assert!(c.limited, "{c:?}");
    let why = c.why.as_deref().unwrap();
    assert!(
        why.contains("event loop ran") && why.contains("(p99; limit"),
        "{c:?}"
    );
    assert!(
        why.contains(&format!("{:.1} ms late", c.loop_late_p99_ms)),
        "{c:?}"
    );
    let table = llm_loadtest::report::table::render(&busy.result);
    assert!(table.contains("c=2 (client-limited)"), "{table}");
    let notes = llm_loadtest::report::table::notes(&busy.result);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("c=2: client-limited — the client's event loop")),
        "{notes:?}"
    );
    server.shutdown().await.unwrap();
}
