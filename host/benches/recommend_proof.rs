//! `recommend` against the simulator's closed form: for each profile × workload × SLO set, the
//! capacity the batching model predicts (`sim --print-capacity`: the closed form's ideal and what
//! a ramp over one cycle reaches in the model run) beside what the search finds
//! by measuring the running simulator, and the GPU counts for 500 and 1,000 users from each.
//!
//! `cargo bench -p llm-loadtest --bench recommend_proof [-- FILTER...]` runs the rows whose
//! name contains any FILTER (e.g. `a100`, `512/128`); with none, all twelve. Each row starts its
//! own simulator in this process. The target is a 95 % SLO attainment.
//!
//! Each row runs the simulator at a time scale k (`sim --time-scale`) with the SLO thresholds
//! scaled by the same k, which keeps the closed form's C* exactly (the simulator's
//! `scaling_times_and_slo_alike_keeps_c_star` test). k is chosen so the output token rate the
//! closed form predicts at C*, divided by k, stays near [`TOKENS_PER_S`] (what client and
//! simulator sustain together on a 2-core machine without distorting timing), and at most 1: a
//! slow profile (l4: ~9-s requests) is served up to ten times faster, a fast one at its own
//! speed. The client's own delays do not scale, so a smaller k is a harder test of it.
//! `PROOF_MIN_K=1` (any number in 0.1..=1) raises the floor, to re-run a row at its own speed.
use std::time::{Duration, Instant};

use llm_loadtest::dataset::DatasetSpec;
use llm_loadtest::metrics::parse_objectives;
use llm_loadtest::plugin::{RecommendGoal, Runtime, RuntimeConfig};
use llm_loadtest::recommend::{self, Outcome};
use llm_loadtest::runner::RunSpec;
use llm_loadtest::tokenize::TokenizerChoice;
use llm_loadtest_sim::{PROFILES, SimConfig, Slo, Workload, capacity, ramped_capacity};
use tokio_util::sync::CancellationToken;

const TARGET: f64 = 0.95;
const WORKLOADS: [(u32, u32); 2] = [(512, 128), (2048, 256)];
const SLOS: [&str; 2] = ["ttft:500ms,tpot:50ms", "ttft:2s,tpot:100ms"];
const BUDGET: Duration = Duration::from_secs(30 * 60);
/// Output tokens per second the time scale aims the busiest probe at.
const TOKENS_PER_S: f64 = 4000.0;

fn gpus(peak: u32, per_replica: u32) -> String {
    if per_replica == 0 {
        "-".into()
    } else {
        peak.div_ceil(per_replica).to_string()
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let min_k = std::env::var("PROOF_MIN_K")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.1, |k| k.clamp(0.1, 1.0));
    let runtime = Runtime::new(RuntimeConfig::default()).expect("plugins load");
    let policy = runtime
        .load_recommend_policy("recommend")
        .expect("the default policy loads");
    println!(
        "{:<16} {:>9} {:<22} {:>5} {:>7} {:>7} {:>7} {:>11} {:>13} {:>13} {:>6} {:>8}",
        "profile",
        "workload",
        "slo",
        "k",
        "closed",
        "ramped",
        "found",
        "bracket",
        "GPUs@500 f/c",
        "GPUs@1000 f/c",
        "probes",
        "wall s"
    );
    for profile in PROFILES {
        for (input_len, output_len) in WORKLOADS {
            for slo in SLOS {
                let name = format!("{} {input_len}/{output_len} {slo}", profile.name);
                if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
                    continue;
                }
                let workload = Workload {
                    input_len,
                    output_len,
                };
                let model_slo = slo.parse::<Slo>().expect("an SLO");
                let cap = capacity(&profile.params, workload, &model_slo, TARGET);
                let closed = cap.max_concurrency;
                // What the probes' ramp reaches in the model (host/sim/src/ramped.rs): the
                // closed form is the ideal of perfectly spread phases.
                let ramped = ramped_capacity(&profile.params, workload, &model_slo, TARGET);
                let busiest = cap
                    .table
                    .iter()
                    .find(|p| p.concurrency == closed)
                    .map_or(0.0, |p| p.output_tokens_per_s);
                let k = (busiest / TOKENS_PER_S).clamp(min_k, 1.0);
                let k = (k * 100.0).round() / 100.0;
                let started = Instant::now();
                let (outcome, probes) = rt.block_on(async {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("a port");
                    let config = SimConfig {
                        time_scale: Some(k),
                        ..SimConfig::with_profile(profile.name)
                    };
                    let server = llm_loadtest_sim::start(config, listener)
                        .await
                        .expect("the simulator starts");
                    let mut spec = RunSpec::new(format!("http://{}", server.local_addr()), "vllm");
                    spec.model = Some("sim".into());
                    spec.dataset = DatasetSpec::Synthetic {
                        input_len,
                        output_len,
                        range_ratio: 0.0,
                        prefix_len: 0,
                    };
                    spec.ignore_eos = true;
                    spec.tokenizer = TokenizerChoice::Auto;
                    let mut objectives = parse_objectives(slo).expect("objectives");
                    for o in &mut objectives {
                        o.threshold_ms *= k;
                    }
                    spec.slo = Some(objectives);
                    let goal = RecommendGoal {
                        target: TARGET,
                        max_concurrency: 1000,
                        peak_concurrency: 1000,
                        options: Vec::new(),
                    };
                    let searched = recommend::probe::find(
                        &spec,
                        &policy,
                        &goal,
                        &runtime,
                        BUDGET,
                        CancellationToken::new(),
                        &tokio::sync::broadcast::channel(16).0,
                        |c, s| {
                            let a = s.goodput.as_ref().map_or(0.0, |g| g.attainment_pct);
                            eprintln!("  {name}: c={c} {a:.1} %");
                        },
                    )
                    .await;
                    let _ = server.shutdown().await;
                    (searched.outcome, searched.probes.len())
                });
                let (found, bracket) = match outcome {
                    Some(Outcome::Found { lo, hi }) => (lo, format!("{lo}-{hi}")),
                    Some(Outcome::AtLeast(n)) => (n, format!(">={n}")),
                    Some(Outcome::None) => (0, "none".into()),
                    None => (0, "no answer".into()),
                };
                println!(
                    "{:<16} {:>9} {:<22} {:>5} {:>7} {:>7} {:>7} {:>11} {:>13} {:>13} {:>6} {:>8.0}",
                    profile.name,
                    format!("{input_len}/{output_len}"),
                    slo,
                    k,
                    closed,
                    ramped,
                    found,
                    bracket,
                    format!("{}/{}", gpus(500, found), gpus(500, closed)),
                    format!("{}/{}", gpus(1000, found), gpus(1000, closed)),
                    probes,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
}
