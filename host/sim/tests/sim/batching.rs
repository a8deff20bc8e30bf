//! The continuous-batching model against its closed form: closed-loop clients with evenly
//! spread start times, measured TTFT and TPOT medians compared with `predict`.

use std::time::{Duration, Instant};

use llm_loadtest_sim::{BatchParams, SimConfig, Slo, Workload, capacity, predict};
use serde_json::json;

use crate::client::{post, runtime, spawn, timing_lock};

const PARAMS: BatchParams = BatchParams {
    max_batch: 16,
    prefill_us_per_token: 10.0,
    step_base_us: 4_000.0,
    step_per_seq_us: 100.0,
    kv_tokens: 1_000_000,
};

const WORKLOAD: Workload = Workload {
    input_len: 200,
    output_len: 12,
};

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

/// Medians and 95th percentiles of TTFT and TPOT, in ms.
struct Measured {
    ttft: f64,
    tpot: f64,
    ttft_p95: f64,
    tpot_p95: f64,
    steps: u64,
}

/// Runs `n` closed-loop clients for `rounds` requests each; measures every round but the first.
async fn measure(params: BatchParams, n: u32, rounds: usize) -> Measured {
    let sim = spawn(SimConfig::batching(params)).await;
    let addr = sim.local_addr();
    let cycle = predict(&params, WORKLOAD, n, 0.5).unwrap().e2el;
    let prompt: String = (0..WORKLOAD.input_len).map(|i| format!("w{i} ")).collect();
    let start = tokio::time::Instant::now();
    let clients: Vec<_> = (0..n)
        .map(|k| {
            let prompt = prompt.clone();
            // Evenly spread phases, as a ramp-up gives: client k starts k/n of a cycle late.
            let begin = start + cycle.mul_f64(f64::from(k) / f64::from(n));
            tokio::spawn(async move {
                tokio::time::sleep_until(begin).await;
                let mut samples = Vec::new();
                for round in 0..rounds {
                    let body = json!({"prompt": prompt, "max_tokens": WORKLOAD.output_len,
                        "ignore_eos": true, "stream": true});
                    let r = post(addr, "/v1/completions", &body.to_string()).await;
                    assert_eq!(r.status, 200);
                    let tokens: Vec<Instant> = r.frames.iter().map(|(t, _)| *t).collect();
                    assert_eq!(tokens.len(), WORKLOAD.output_len as usize + 1);
                    if round > 0 {
                        let ttft = (tokens[0] - r.sent_at).as_secs_f64() * 1e3;
                        let last = tokens[WORKLOAD.output_len as usize - 1];
                        let tpot = (last - tokens[0]).as_secs_f64() * 1e3
                            / f64::from(WORKLOAD.output_len - 1);
                        samples.push((ttft, tpot));
                    }
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    let ttfts: Vec<f64> = all.iter().map(|s| s.0).collect();
    let tpots: Vec<f64> = all.iter().map(|s| s.1).collect();
    Measured {
        ttft: quantile(ttfts.clone(), 0.5),
        tpot: quantile(tpots.clone(), 0.5),
        ttft_p95: quantile(ttfts, 0.95),
        tpot_p95: quantile(tpots, 0.95),
        steps: sim.stats().scheduler_steps,
    }
}

#[test]
fn ttft_and_tpot_rise_with_concurrency_as_the_closed_form_predicts() {
    let _serial = timing_lock();
    runtime().block_on(rise_with_concurrency());
}

async fn rise_with_concurrency() {
    let mut last = (0.0, 0.0);
    println!(
        "batching model vs closed form (median ms): N  ttft measured/predicted  tpot measured/predicted"
    );
    for n in [1u32, 8, 32] {
        let p = predict(&PARAMS, WORKLOAD, n, 0.5).unwrap();
        let Measured {
            ttft, tpot, steps, ..
        } = measure(PARAMS, n, 4).await;
        let (pt, pp) = (
            p.ttft.as_secs_f64() * 1e3,
            p.tpot.unwrap().as_secs_f64() * 1e3,
        );
        println!("  {n:>3}  {ttft:>8.2} / {pt:>8.2}  {tpot:>7.2} / {pp:>7.2}   ({steps} steps)");
        // 20 % plus 2 ms: the client's own delays, and the discrete effects the median of a
        // few dozen samples does not smooth.
        assert!(
            (ttft - pt).abs() <= 0.2 * pt + 2.0,
            "N={n}: ttft {ttft:.2} vs {pt:.2}"
        );
        assert!(
            (tpot - pp).abs() <= 0.2 * pp + 2.0,
            "N={n}: tpot {tpot:.2} vs {pp:.2}"
        );
        assert!(
            ttft > last.0 && tpot > last.1,
            "latency rises with concurrency"
        );
        last = (ttft, tpot);
    }
}

#[test]
fn capacity_matches_the_simulators_measured_attainment() {
    let _serial = timing_lock();
    runtime().block_on(capacity_attainment());
}

async fn capacity_attainment() {
    let slo: Slo = "ttft:40ms".parse().unwrap();
    let cap = capacity(&PARAMS, WORKLOAD, &slo, 0.95);
    let n = cap.max_concurrency;
    println!(
        "capacity for {slo:?} at 95 %: {n} clients (slots {})",
        cap.slots
    );
    assert!(n > 1);
    let at = measure(PARAMS, n, 4).await;
    let over = measure(PARAMS, n * 3 / 2, 4).await;
    let predicted_over = predict(&PARAMS, WORKLOAD, n * 3 / 2, 0.95).unwrap();
    println!(
        "  p95 ttft at {n}: {:.2} ms (tpot p95 {:.2}); at {}: {:.2} ms (predicted {:.2})",
        at.ttft_p95,
        at.tpot_p95,
        n * 3 / 2,
        over.ttft_p95,
        predicted_over.ttft.as_secs_f64() * 1e3
    );
    assert!(
        at.ttft_p95 <= 40.0 * 1.15 + 2.0,
        "at capacity p95 ttft {:.2}",
        at.ttft_p95
    );
    assert!(
        over.ttft_p95 > 40.0,
        "past capacity p95 ttft {:.2}",
        over.ttft_p95
    );
}

#[tokio::test]
async fn kv_budget_queues_and_oversize_requests_are_refused() {
    let params = BatchParams {
        max_batch: 64,
        prefill_us_per_token: 0.0,
        step_base_us: 2_000.0,
        step_per_seq_us: 0.0,
        kv_tokens: 30,
    };
    let sim = spawn(SimConfig::batching(params)).await;
    let addr = sim.local_addr();
    // 10 prompt + 10 output tokens: one sequence fits in 30 KV tokens, a second must wait.
    let prompt = "a b c d e f g h i j";
    let body =
        json!({"prompt": prompt, "max_tokens": 10, "ignore_eos": true, "stream": true}).to_string();
    let (a, b) = tokio::join!(
        post(addr, "/v1/completions", &body),
        post(addr, "/v1/completions", &body)
    );
    let first_done = a.frames.last().unwrap().0.min(b.frames.last().unwrap().0);
    let second_first = a.frames[0].0.max(b.frames[0].0);
    assert!(
        second_first >= first_done,
        "the second sequence starts after the first ends"
    );
    assert_eq!(sim.stats().scheduler_steps, 20);

    let too_long = json!({"prompt": prompt, "max_tokens": 25, "ignore_eos": true}).to_string();
    let r = post(addr, "/v1/completions", &too_long).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length")
    );
}

#[tokio::test]
async fn metrics_show_running_and_waiting() {
    let params = BatchParams {
        max_batch: 2,
        prefill_us_per_token: 0.0,
        step_base_us: 20_000.0,
        step_per_seq_us: 0.0,
        kv_tokens: 1_000,
    };
    let sim = spawn(SimConfig::batching(params)).await;
    let addr = sim.local_addr();
    let body =
        json!({"prompt": "x", "max_tokens": 20, "ignore_eos": true, "stream": true}).to_string();
    let clients: Vec<_> = (0..5)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move { post(addr, "/v1/completions", &body).await })
        })
        .collect();
    // Wait (bounded) until the scheduler has admitted its two and queued the rest.
    let mut seen = None;
    for _ in 0..200 {
        let s = sim.stats();
        if s.running == 2 && s.queue_depth == 3 {
            seen = Some(crate::client::get(addr, "/metrics").await.text());
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let text = seen.expect("two running and three waiting within a second");
    assert!(
        text.contains("vllm:num_requests_running{engine=\"0\",model_name=\"sim-llama\"} 2.0"),
        "{text}"
    );
    assert!(text.contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"sim-llama\"} 3.0"));
    assert!(text.contains("vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"sim-llama\"} 0.042"));
    for c in clients {
        assert_eq!(c.await.unwrap().status, 200);
    }
}
