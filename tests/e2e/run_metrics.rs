//! `run` against the simulator's exact clock: the arithmetic of every
//! metric, warm-up, goodput and attainment.
use llm_loadtest::engine::arrival_offsets;
use llm_loadtest::metrics::{Distribution, ErrorClass, parse_objectives};
use llm_loadtest::plan::{Bound, LevelPlan, Load, Warmup};

use crate::support::{fixed, run, sim, spec};

/// Slack for the f64 arithmetic on durations that are exact in nanoseconds.
const EPS_MS: f64 = 1e-6;

/// A summary distribution of `values`, recomputed here.
fn distribution(mut values: Vec<f64>) -> Distribution {
    Distribution::from_values(&mut values)
}

// Nothing here bounds a figure from above or holds it near the configured
// timing: a loaded machine makes any figure later by any amount. What holds
// on every machine is causality (the simulator sends token k no sooner than
// ttft + k·itl after it reads the request, which is after we sent it, on
// deadlines absolute from that arrival) and the arithmetic between the
// figures. How close they come is a benchmark figure (host/benches/timing.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_itl_tpot_e2el_add_up_and_never_beat_the_simulator_clock() {
    const TTFT: f64 = 50.0;
    const ITL: f64 = 10.0;
    const N: u32 = 16;
    let server = sim(fixed(50, 10)).await;
    let out = run(&spec(&server, 4, 24, N)).await;
    let level = &out.result.levels[0];
    let s = &level.summary;
    assert_eq!((s.requests, s.completed, s.failed), (24, 24, 0));
    let recs = &out.records[0];
    assert_eq!(recs.len(), 24);
    for r in recs {
        assert_eq!(r.output_tokens, N, "usage from the server");
        // One simulator token per event, so event k is token k.
        assert_eq!(r.content_events, N);
        assert_eq!(r.itl_ms.len() as u32, N - 1);
        let ttft = r.ttft_ms.unwrap();
        let e2el = r.e2el_ms.unwrap();
        // Causality: the first token never comes sooner than ttft, and
        // token k (ttft plus the gaps so far) never sooner than
        // ttft + k·itl, however late the ones before it were.
        assert!(ttft >= TTFT - EPS_MS, "ttft {ttft} < {TTFT}");
        let mut at = ttft;
        for (k, gap) in r.itl_ms.iter().enumerate() {
            assert!(*gap >= 0.0, "negative gap {gap}");
            at += gap;
            let due = TTFT + (k + 1) as f64 * ITL;
            assert!(at >= due - EPS_MS, "token {} at {at} ms < {due}", k + 1);
        }
        let last_due = TTFT + f64::from(N - 1) * ITL;
        assert!(e2el >= last_due - EPS_MS, "e2el {e2el} < {last_due}");
        // Identities: the gaps span first to last event, where e2el ends;
        // the response ends no sooner than its last event; tpot is the mean
        // gap per token after the first, as vLLM defines it.
        assert!((at - e2el).abs() < EPS_MS, "sum of itl {at} != e2el {e2el}");
        assert!(
            r.latency_ms >= e2el,
            "latency {} < e2el {e2el}",
            r.latency_ms
        );
        let tpot = r.tpot_ms().unwrap();
        let want = (e2el - ttft) / f64::from(N - 1);
        assert!((tpot - want).abs() < EPS_MS, "tpot {tpot} != {want}");
    }
    // The summary is exactly the records' figures.
    let ok = || recs.iter().filter(|r| r.succeeded());
    assert_eq!(
        s.ttft_ms,
        distribution(ok().filter_map(|r| r.ttft_ms).collect())
    );
    assert_eq!(
        s.e2el_ms,
        distribution(ok().filter_map(|r| r.e2el_ms).collect())
    );
    assert_eq!(
        s.tpot_ms,
        distribution(
            ok().map(|r| (r.e2el_ms.unwrap() - r.ttft_ms.unwrap()) / f64::from(N - 1))
                .collect()
        )
    );
    assert_eq!(
        s.itl_ms,
        distribution(ok().flat_map(|r| r.itl_ms.iter().copied()).collect())
    );
    assert_eq!(s.itl_ms.count, 24 * u64::from(N - 1));
    assert_eq!(s.total_output_tokens, 24 * u64::from(N));
    // The simulator counts prompt words, not cl100k tokens: the totals are its counts, and
    // the workload check sets them beside what was asked.
    let server_input: u64 = recs
        .iter()
        .map(|r| u64::from(r.prompt_tokens_server.expect("usage")))
        .sum();
    assert_eq!(s.total_input_tokens, server_input);
    let w = s.workload.as_ref().expect("the simulator reports usage");
    assert_eq!((w.input_requests, w.output_requests), (24, 24));
    assert_eq!(w.requested_input_tokens, 24 * 32);
    assert_eq!(w.server_input_tokens, server_input);
    assert_eq!(w.requested_output_tokens, 24 * u64::from(N));
    assert_eq!(w.server_output_tokens, 24 * u64::from(N));
    // Never more than the 4 slots in flight. Exactly 4 at once would need
    // the workers' sends to overlap, which a loaded machine does not owe.
    assert!(
        (1..=4).contains(&s.peak_concurrency),
        "peak {}",
        s.peak_concurrency
    );
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
    // Objectives no loaded machine misses on 34 ms requests: every
    // successful request meets them, and only failures are not good.
    sp.slo = Some(parse_objectives("ttft:10min,tpot:10min").unwrap());
    let out = run(&sp).await;
    let s = &out.result.levels[0].summary;
    assert!(s.failed > 0 && s.completed > 0, "{} failed", s.failed);
    assert_eq!(s.errors[&ErrorClass::HttpStatus].count, s.failed);
    let g = s.goodput.as_ref().unwrap();
    assert_eq!(g.good, s.completed);
    assert_eq!((g.violations["ttft"], g.violations["tpot"]), (0, 0));
    let expected = 100.0 * s.completed as f64 / 60.0;
    assert!((g.attainment_pct - expected).abs() < 1e-9);
    assert!((g.goodput_rps - s.completed as f64 / s.duration_s).abs() < 1e-9);

    // A TTFT objective under the simulator's 20 ms fails every request on
    // any machine (causality: no first token comes sooner), and says which.
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
    // 200 req/s through one slot, every request at least 8 ms (ttft 5 +
    // 3 × itl 1, by causality on any machine): request i is sent no sooner
    // than its schedule, nor than 8 ms after request i − 1 was sent, as the
    // slot frees only when that one ends. A slower machine only sends later,
    // so this bounds every send and queue time from below.
    const SERVICE_S: f64 = 0.008;
    const EPS_S: f64 = 1e-6;
    // The earliest send of each request, from the seeded schedule alone (no clock read).
    let earliest: Vec<f64> = schedule
        .iter()
        .scan(f64::NEG_INFINITY, |prev, &t| {
            *prev = t.max(*prev + SERVICE_S);
            Some(*prev)
        })
        .collect();
    // The schedule does build a queue (arithmetic on it, not a measurement), so the lower
    // bounds below bite.
    let must_wait = earliest
        .iter()
        .zip(&schedule)
        .filter(|(e, t)| (*e - *t) * 1e3 > 1.0)
        .count();
    assert!(
        must_wait > 10,
        "only {must_wait} requests must wait for the slot"
    );
    for ((r, t), earliest) in recs.iter().zip(&schedule).zip(&earliest) {
        assert!(
            (r.intended_start_s - t).abs() < 1e-9,
            "intended start is the schedule's"
        );
        assert!(r.send_s + 1e-9 >= r.intended_start_s);
        assert!(
            r.send_s >= earliest - EPS_S,
            "request {} sent at {} s, before {earliest} s",
            r.index,
            r.send_s
        );
        let min_queue_ms = (earliest - t) * 1e3;
        assert!(r.queue_ms >= min_queue_ms - EPS_S * 1e3, "{r:?}");
    }
    assert_eq!(out.result.levels[0].summary.peak_concurrency, 1);
    server.shutdown().await.unwrap();
}
