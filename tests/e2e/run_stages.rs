//! Staged load (`--stages`, `--rate-stages`) against the fixed-clock simulator. What is checked
//! is what the schedule fixes whatever the machine's speed: a client never starts before its
//! place on the ramp (so early intervals hold few requests), none sends after its stage has
//! ramped it down, an open loop sends exactly the arrivals its seed draws, dealt to the stage
//! each was due in — counted from the records, never timed against the wall clock.
use llm_loadtest::plan::{Profile, StageUnit, stages};
use llm_loadtest::result::RunResult;

use crate::run_cli::cmd;
use crate::support::{fixed, run, sim, spec};

/// A staged run of `profile` against a fresh 20 ms / 2 ms simulator, 8 output tokens.
async fn staged(profile: &Profile, burstiness: f64, seed: u64) -> RunResult {
    let server = sim(fixed(20, 2)).await;
    let mut sp = spec(&server, 1, 1, 8);
    sp.levels = profile.levels(burstiness, None, seed);
    sp.seed = seed;
    let result = run(&sp).await.result;
    server.shutdown().await.unwrap();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_stages_ramp_hold_and_ramp_down() {
    let profile = stages::parse("600ms:6,600ms:6,600ms:0", StageUnit::Clients).unwrap();
    let result = staged(&profile, 1.0, 5).await;
    assert!(!result.interrupted);
    let labels: Vec<&str> = result.levels.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, ["clients 0→6", "6 clients", "clients 6→0"]);
    for l in &result.levels {
        let s = &l.summary;
        assert!(s.completed > 0 && s.failed == 0, "{}: {s:?}", l.label);
        assert!(
            s.peak_concurrency <= 6,
            "{}: {}",
            l.label,
            s.peak_concurrency
        );
        // Each stage's requests were due inside it (times count from the stage's start).
        for r in l.requests.iter().flatten() {
            assert!(
                (0.0..0.6).contains(&r.intended_start_s),
                "{}: {r:?}",
                l.label
            );
        }
    }
    // The hold keeps its six clients; its phases are checked as any closed loop's.
    assert!(result.levels[1].phase.is_some());

    let series = result.load_series.as_ref().expect("a staged run's series");
    assert_eq!(series.unit, StageUnit::Clients);
    assert_eq!(series.stage_starts_s, vec![0.0, 0.6, 1.2]);
    assert_eq!(series.interval_s, 0.1);
    // Client k starts at k·0.1 s: in the first 0.1 s only client 0 (and client 1 from its
    // last instant) can have a request out, however late this machine runs.
    assert!(series.points[0].in_flight <= 2.0, "{:?}", series.points[0]);
    assert!(series.points.iter().all(|p| p.in_flight <= 6.0 + 1e-9));
    // The requests in flight add up to the requests' own time, interval by interval.
    let busy: f64 = result
        .levels
        .iter()
        .flat_map(|l| l.requests.iter().flatten())
        .map(|r| r.latency_ms / 1e3)
        .sum();
    let summed: f64 = series.points.iter().map(|p| p.in_flight).sum::<f64>() * series.interval_s;
    assert!((busy - summed).abs() < 1e-6, "{busy} vs {summed}");
    let completed: f64 =
        series.points.iter().map(|p| p.completed_per_s).sum::<f64>() * series.interval_s;
    let counted: u64 = result.levels.iter().map(|l| l.summary.completed).sum();
    assert!((completed - counted as f64).abs() < 1e-6);

    // The stages are charted.
    let titles: Vec<String> = llm_loadtest::report::timeline::series(&result)
        .iter()
        .map(|s| s.title.to_owned())
        .collect();
    assert!(
        titles.contains(&"Clients and requests in flight over time".to_owned()),
        "{titles:?}"
    );
    assert!(titles.contains(&"TTFT over time".to_owned()), "{titles:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_stages_send_exactly_the_seeded_arrivals() {
    let profile = stages::parse("500ms:40,500ms:40", StageUnit::Rate).unwrap();
    let seed = 11;
    let result = staged(&profile, 1.0, seed).await;
    let due = profile.arrivals(1.0, seed);
    // Λ over the stages is 10 + 20 = 30 arrivals; the seed fixes how many and when.
    assert!(!due.is_empty());
    let in_first = due.iter().filter(|&&t| t < 0.5).count() as u64;
    let sent: Vec<u64> = result.levels.iter().map(|l| l.summary.requests).collect();
    assert_eq!(sent, vec![in_first, due.len() as u64 - in_first]);
    // Each request was due when the schedule said, on its stage's clock.
    let mut intended: Vec<f64> = result
        .levels
        .iter()
        .zip([0.0, 0.5])
        .flat_map(|(l, at)| {
            l.requests
                .iter()
                .flatten()
                .map(move |r| at + r.intended_start_s)
        })
        .collect();
    intended.sort_by(f64::total_cmp);
    for (a, b) in intended.iter().zip(&due) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    let series = result.load_series.as_ref().unwrap();
    assert_eq!(series.unit, StageUnit::Rate);
    let planned: f64 = series.points.iter().map(|p| p.target).sum::<f64>() * series.interval_s;
    assert!((planned - 30.0).abs() < 1.0, "Λ = {planned}");
}

#[test]
fn stage_flags_that_cannot_work_are_refused() {
    for (extra, says) in [
        (
            vec!["--stages", "10s:5", "--duration", "1m"],
            "leave out --duration",
        ),
        (
            vec!["--stages", "10s:5", "--warmup", "10"],
            "leave out --warmup",
        ),
        (vec!["--stages", "10s:2.5"], "whole number of clients"),
        (
            vec![
                "--stages",
                "10s:5",
                "--start-at",
                "2026-12-05T10:00:00Z",
                "--level-interval",
                "1m",
            ],
            "leave out --level-interval",
        ),
        (vec!["--rate-stages", "10s:0"], "never rise above zero"),
        (
            vec!["--stages", "10s:5", "--concurrency", "4"],
            "cannot be used",
        ),
        (
            vec!["--stages", "10s:5", "--max-concurrency", "4"],
            "--max-concurrency limits an open loop",
        ),
    ] {
        let mut c = cmd(&["run", "--server", "http://127.0.0.1:9", "--no-save"]);
        c.args(&extra);
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}
