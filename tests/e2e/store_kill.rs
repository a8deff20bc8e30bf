//! A run killed with SIGKILL keeps the records it saved on the way, its settings and its
//! objectives, and the next look at the store shows it interrupted and judged again.
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::store_support::{cmd, ok, plain};
use crate::support::{fixed, sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_interrupted_with_its_saved_records() {
    // 2 in flight, each request at least 120 ms (20 + 5 × 20, by
    // causality): 2,000 requests take at least 120 s on any machine. The
    // kill comes on the first durable batch, a second or so in: a loaded
    // machine only makes the run longer, so it cannot end first.
    let server = sim(fixed(20, 20)).await;
    let url = format!("http://{}", server.local_addr());
    let data = tempfile::tempdir().unwrap();
    let mut c = cmd(
        data.path(),
        &[
            "run",
            "--server",
            &url,
            "--model",
            "m",
            "--concurrency",
            "2",
            "--num-prompts",
            "2000",
            "--input-len",
            "8",
            "--output-len",
            "6",
            "--ignore-eos",
            "--no-progress",
            "--tag",
            "killed",
            "--slo",
            "e2el:60s",
            "--log",
            "llm_loadtest::store=info",
        ],
    );
    let (id, saved) = tokio::task::spawn_blocking(move || {
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut id = None;
        let mut saved = None;
        for line in BufReader::new(stderr).lines() {
            let line = plain(&line.unwrap());
            if let Some(rest) = line.strip_prefix("saving as run ") {
                id = rest.split_whitespace().next().map(str::to_string);
            }
            if line.contains("records saved")
                && let Some(n) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("saved="))
                    .and_then(|n| n.parse::<u64>().ok())
                && n > 0
            {
                saved = Some(n);
                child.kill().unwrap(); // SIGKILL: no chance to clean up
                break;
            }
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), None, "killed by a signal");
        (
            id.expect("the run printed its ID"),
            saved.expect("a batch was saved"),
        )
    })
    .await
    .unwrap();

    let history = ok(cmd(data.path(), &["history", "--tag", "killed"])).await;
    let row = history
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{id} not in {history}"));
    assert!(row.contains("interrupted"), "{row}");
    let show = ok(cmd(data.path(), &["show", &id])).await;
    let (records, _) = crate::soak_run::shown(&show);
    assert!(
        records >= saved,
        "{records} records kept, {saved} were saved: {show}"
    );
    assert!(records < 2000, "{show}");
    assert!(show.contains("c=2 (interrupted)"), "{show}");
    assert!(show.contains("stopped before the run finished"), "{show}");
    // Its settings and objectives survived, and its requests were judged again.
    assert!(show.contains("judged again by the `slo` policy"), "{show}");
    let export = ok(cmd(data.path(), &["export", &id, "--format", "json"])).await;
    let r: serde_json::Value = serde_json::from_str(&export).unwrap();
    assert_eq!(r["settings"]["slo"]["objectives"][0]["metric"], "e2el");
    assert_eq!(r["settings"]["tags"][0], "killed");
    let g = &r["levels"][0]["summary"]["goodput"];
    assert_eq!(g["attainment_pct"], 100.0, "{g}");
    server.shutdown().await.unwrap();
}
