//! Load shapes against the simulator's batching model, the case issue 17 found: clients started
//! together stay in lockstep — a wave the batch takes and a wave that waits a whole cycle — and
//! miss an SLO that the same clients meet with their phases spread over one cycle by
//! `--ramp-up`.
//!
//! Model: 32 batch slots, 20 µs prefill per prompt token, 3 ms + 150 µs per running sequence per
//! decode step; 64 prompt tokens, 32 output tokens; SLO TTFT 100 ms and TPOT 20 ms.
//!
//! The issue quoted 42 clients, the closed form's capacity at 95 % (`capacity`), and expected a
//! ramp to meet it. It does not, and the model says why (host/sim/src/ramped.rs): a ramp spreads
//! clients evenly in time, the batch's steps are shorter while it fills, so admissions come 0, 1
//! or 2 to a step, and with fixed lengths that pattern repeats every 32 steps for good. The closed
//! form assumes one admission per step. The model run in virtual time with the ramp's starts
//! (`ramped_capacity`) puts the capacity at 38 (p95 TTFT 94 ms); at 42 it meets the SLO 63 % of
//! the time (p95 138 ms against the closed form's 99 ms); started together, 36 clients meet it
//! 87.8 %. The real-clock test uses 36 clients, two under the corrected capacity (the model's p95
//! TTFT is 68 ms there). It asserts only what one run can compare whatever the machine's load —
//! lockstep flagged, then cleared by the ramp the note suggests, and the ramped level's
//! attainment above the lockstep one's — and leaves the absolute "≥ 95 %" to the model, in model
//! time, at the ramp the run measured.
use std::time::Duration;

use llm_loadtest::dataset::DatasetSpec;
use llm_loadtest::metrics::parse_objectives;
use llm_loadtest::plan::{Bound, LevelPlan, Load, Warmup};
use llm_loadtest_sim::{
    BatchParams, ClosedLoop, SimConfig, Slo, Workload, capacity, closed_loop, ramped_capacity,
};

use crate::support::{run, sim, spec};

const PARAMS: BatchParams = BatchParams {
    max_batch: 32,
    prefill_us_per_token: 20.0,
    step_base_us: 3_000.0,
    step_per_seq_us: 150.0,
    kv_tokens: 100_000,
};
const CLIENTS: u32 = 36;
const SLO: &str = "ttft:100ms,tpot:20ms";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_of_one_cycle_breaks_the_lockstep_and_meets_the_slo() {
    let workload = Workload {
        input_len: 64,
        output_len: 32,
    };
    let server = sim(SimConfig::batching(PARAMS)).await;
    let level = |ramp: Duration| {
        let mut sp = spec(&server, CLIENTS, 0, workload.output_len);
        sp.dataset = DatasetSpec::Synthetic {
            input_len: workload.input_len,
            output_len: workload.output_len,
            range_ratio: 0.0,
            prefix_len: 0,
        };
        sp.slo = Some(parse_objectives(SLO).unwrap());
        sp.levels = vec![LevelPlan {
            load: Load::Concurrency {
                concurrency: CLIENTS,
            },
            bound: Bound::Requests(u64::from(CLIENTS) * 8),
            // As `--ramp-up` makes it: the ramp counts as warm-up.
            warmup: if ramp.is_zero() {
                Warmup::Requests(u64::from(CLIENTS))
            } else {
                Warmup::Seconds(ramp.as_secs_f64())
            },
            seed: 3,
        }];
        sp.ramp = ramp;
        async move {
            let mut result = run(&sp).await.result;
            assert_eq!(
                result.settings.ramp_up_s,
                (!ramp.is_zero()).then_some(ramp.as_secs_f64()),
                "the result records the ramp"
            );
            result.levels.remove(0)
        }
    };

    let together = level(Duration::ZERO).await;
    let phase = together.phase.clone().expect("a closed loop is checked");
    let attained =
        |l: &llm_loadtest::result::LevelResult| l.summary.goodput.as_ref().unwrap().attainment_pct;
    eprintln!(
        "together: attainment {:.1} %, TTFT p99 {:.0} ms, {phase:?}",
        attained(&together),
        together.summary.ttft_ms.p99
    );
    assert!(phase.lockstep, "{phase:?}");

    // One cycle, as the lockstep note suggests: the clients' phases spread evenly.
    let ramp = Duration::from_secs_f64(phase.cycle_ms / 1e3);
    let spread = level(ramp).await;
    let phase = spread.phase.clone().expect("checked");
    eprintln!(
        "ramped over {ramp:?}: attainment {:.1} %, TTFT p99 {:.0} ms, {phase:?}",
        attained(&spread),
        spread.summary.ttft_ms.p99
    );
    assert!(!phase.lockstep, "{phase:?}");
    // Within one run, on the same machine: the ramp kept what lockstep lost.
    assert!(attained(&spread) > attained(&together));
    // Whether that ramp meets the SLO is the model's to say, in model time: a real-clock bound
    // (a first version asked this run for ≥ 95 %) would depend on how busy the machine is.
    let in_model = model_attainment(CLIENTS, ramp);
    assert!(in_model >= 95.0, "{in_model:.1} % in model time");
    server.shutdown().await.unwrap();
}

/// Attainment of the SLO among rounds 2 and later of a virtual closed loop (the first rounds
/// are the warm-up), in %.
fn model_attainment(clients: u32, stagger: Duration) -> f64 {
    let workload = Workload {
        input_len: 64,
        output_len: 32,
    };
    let shape = ClosedLoop {
        clients,
        rounds: 12,
        stagger,
        client_gap: Duration::from_micros(500),
    };
    let run = closed_loop(PARAMS, workload, shape).expect("fits the KV budget");
    let measured: Vec<_> = run.requests.iter().filter(|r| r.round >= 2).collect();
    // Judged in model time: the model's own step arithmetic, no clock read.
    let slo: Slo = SLO.parse().unwrap();
    let good = measured.iter().filter(|r| slo.met_by(r)).count();
    good as f64 * 100.0 / measured.len() as f64
}

/// In virtual time, no clock involved: lockstep costs the SLO what spread phases keep, at the
/// concurrency the real-clock test uses; the capacity a ramp reaches is below the closed form's.
#[test]
fn in_model_time_spread_phases_meet_what_lockstep_misses() {
    // One cycle at 36 clients: 36 / 110 req/s, the model's throughput there.
    let cycle = Duration::from_millis(326);
    let together = model_attainment(CLIENTS, Duration::ZERO);
    let spread = model_attainment(CLIENTS, cycle);
    assert!(together < 90.0, "{together:.1} %");
    assert!(spread >= 99.9, "{spread:.1} %");
    let workload = Workload {
        input_len: 64,
        output_len: 32,
    };
    let slo: Slo = SLO.parse().unwrap();
    let closed = capacity(&PARAMS, workload, &slo, 0.95).max_concurrency;
    let ramped = ramped_capacity(&PARAMS, workload, &slo, 0.95);
    assert_eq!((closed, ramped), (42, 38));
    assert!(CLIENTS < ramped);
}
#[test]
fn ramp_flags_that_cannot_work_are_refused() {
    for (extra, says) in [
        (
            vec!["--request-rate", "5", "--ramp-up", "10s"],
            "closed-loop clients",
        ),
        (
            vec!["--ramp-up", "10s", "--warmup", "20"],
            "give --warmup as a duration",
        ),
        (vec!["--ramp-up", "soon"], "--ramp-up"),
    ] {
        let mut c = crate::run_cli::cmd(&["run", "--server", "http://127.0.0.1:9", "--no-save"]);
        c.args(&extra);
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}
