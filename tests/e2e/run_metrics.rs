//! `run` against the simulator's exact clock: the arithmetic of every
//! metric, warm-up, goodput and attainment.
use llm_loadtest::engine::{Bound, LevelPlan, Load, Warmup, arrival_offsets};
use llm_loadtest::metrics::{ErrorClass, parse_objectives};

use crate::support::{fixed, run, sim, spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_itl_tpot_e2el_match_the_simulator_clock() {
    let server = sim(fixed(50, 10)).await;
    let out = run(&spec(&server, 4, 24, 16)).await;
    let level = &out.result.levels[0];
    let s = &level.summary;
    assert_eq!((s.requests, s.completed, s.failed), (24, 24, 0));
    for r in &out.records[0] {
        assert_eq!(r.output_tokens, 16, "usage from the server");
        assert_eq!(r.content_events, 16);
        let ttft = r.ttft_ms.unwrap();
        // The server holds the first token 50 ms after it reads the request:
        // we can never see it earlier. Single requests may be late on a
        // loaded 2-core machine; the medians below are held to the ms.
        assert!((49.9..100.0).contains(&ttft), "ttft {ttft}");
        let e2el = r.e2el_ms.unwrap();
        assert!((199.9..260.0).contains(&e2el), "e2el {e2el} (50 + 15 × 10)");
        assert_eq!(r.itl_ms.len(), 15);
        let tpot = r.tpot_ms().unwrap();
        assert!((6.0..14.0).contains(&tpot), "tpot {tpot}");
    }
    // To the millisecond where it counts: medians.
    assert!(
        (s.ttft_ms.p50 - 50.0).abs() < 3.0,
        "ttft p50 {}",
        s.ttft_ms.p50
    );
    assert!(
        (s.itl_ms.p50 - 10.0).abs() < 1.0,
        "itl p50 {}",
        s.itl_ms.p50
    );
    assert!(
        (s.tpot_ms.p50 - 10.0).abs() < 1.0,
        "tpot p50 {}",
        s.tpot_ms.p50
    );
    assert!(
        (s.e2el_ms.p50 - 200.0).abs() < 3.0,
        "e2el p50 {}",
        s.e2el_ms.p50
    );
    assert_eq!(s.total_output_tokens, 24 * 16);
    assert_eq!(s.total_input_tokens, 24 * 32);
    assert_eq!(s.peak_concurrency, 4);
    let c = s
        .token_count_check
        .as_ref()
        .expect("server and client counts compared");
    assert_eq!(c.requests_compared, 24);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_requests_are_kept_but_excluded() {
    let server = sim(fixed(5, 1)).await;
    let mut sp = spec(&server, 2, 10, 4);
    sp.levels[0].warmup = Warmup::Requests(3);
    let out = run(&sp).await;
    let recs = &out.records[0];
    assert_eq!(recs.len(), 13);
    assert_eq!(recs.iter().filter(|r| r.warmup).count(), 3);
    assert!(recs.iter().filter(|r| r.warmup).all(|r| r.index < 3));
    assert_eq!(out.result.levels[0].summary.requests, 10);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goodput_and_attainment_count_failures_as_not_good() {
    let mut cfg = fixed(20, 2);
    cfg.fault_rate = 0.3;
    cfg.faults = vec![llm_loadtest_sim::FaultKind::Http500];
    cfg.fault_seed = 11;
    let server = sim(cfg).await;
    let mut sp = spec(&server, 4, 60, 8);
    // Every successful request meets ttft:1s; only failures are not good.
    sp.slo = Some(parse_objectives("ttft:1s,tpot:1s").unwrap());
    let out = run(&sp).await;
    let s = &out.result.levels[0].summary;
    assert!(s.failed > 0 && s.completed > 0, "{} failed", s.failed);
    assert_eq!(s.errors[&ErrorClass::HttpStatus].count, s.failed);
    let g = s.goodput.as_ref().unwrap();
    assert_eq!(g.good, s.completed);
    let expected = 100.0 * s.completed as f64 / 60.0;
    assert!((g.attainment_pct - expected).abs() < 1e-9);
    assert!((g.goodput_rps - s.completed as f64 / s.duration_s).abs() < 1e-9);

    // A tight TTFT objective fails every request, and says which objective.
    sp.slo = Some(parse_objectives("ttft:5ms").unwrap());
    let out = run(&sp).await;
    let g = out.result.levels[0].summary.goodput.clone().unwrap();
    assert_eq!(g.good, 0);
    assert_eq!(g.attainment_pct, 0.0);
    assert_eq!(g.violations["ttft"], out.result.levels[0].summary.completed);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_follows_its_seeded_schedule_and_records_queue_time() {
    let server = sim(fixed(5, 1)).await;
    let mut sp = spec(&server, 1, 40, 4);
    sp.levels = vec![LevelPlan {
        load: Load::Rate {
            rate: 200.0,
            burstiness: 1.0,
            max_concurrency: Some(1),
        },
        bound: Bound::Requests(40),
        warmup: Warmup::None,
        seed: 9,
    }];
    let out = run(&sp).await;
    let recs = &out.records[0];
    assert_eq!(recs.len(), 40);
    let schedule = arrival_offsets(200.0, 1.0, 40, 9);
    for (r, t) in recs.iter().zip(&schedule) {
        assert!(
            (r.intended_start_s - t).abs() < 1e-9,
            "intended start is the schedule's"
        );
        assert!(r.send_s + 1e-9 >= r.intended_start_s);
    }
    // 200 req/s against 8 ms requests through one slot: the queue builds.
    let queued = recs.iter().filter(|r| r.queue_ms > 1.0).count();
    assert!(queued > 10, "{queued} requests waited for the slot");
    assert_eq!(out.result.levels[0].summary.peak_concurrency, 1);
    server.shutdown().await.unwrap();
}
