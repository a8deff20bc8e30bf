//! One data directory, several processes: while a run saves, `history` and `show` in other
//! processes read it (running, with the records saved so far) and a second run saves whole;
//! both runs end complete with every record.
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::soak_run::shown;
use crate::store_support::{cmd, ok, plain, saved_id};
use crate::support::{fixed, sim};

fn run_args<'a>(url: &'a str, requests: &'a str, tag: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--server",
        url,
        "--model",
        "m",
        "--concurrency",
        "2",
        "--num-prompts",
        requests,
        "--input-len",
        "8",
        "--output-len",
        "6",
        "--ignore-eos",
        "--tokenizer",
        "cl100k_base",
        "--no-progress",
        "--tag",
        tag,
        "--log",
        "llm_loadtest::store=info",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_progress_shares_its_data_directory() {
    // Run A: 2 in flight, each request at least 120 ms (20 + 5 × 20, by causality), 150
    // requests: at least 9 s on any machine. Everything else happens once it has saved its
    // first records, about a second in, and is checked to happen while A still runs.
    let server = sim(fixed(20, 20)).await;
    let url = format!("http://{}", server.local_addr());
    let data = tempfile::tempdir().unwrap();
    let mut a = cmd(data.path(), &run_args(&url, "150", "a"));
    let (started_tx, started_rx) = std::sync::mpsc::channel::<String>();
    let a_done = tokio::task::spawn_blocking(move || {
        let mut child = a
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let out_reader =
            std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
        let mut id = None;
        let mut sent = false;
        // Read to the end: a child whose stderr pipe fills would stall.
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = plain(&line.unwrap());
            if let Some(rest) = line.strip_prefix("saving as run ") {
                id = rest.split_whitespace().next().map(str::to_owned);
            }
            if !sent && line.contains("records saved") && !line.contains("saved=0") {
                let _ = started_tx.send(id.clone().expect("the ID comes first"));
                sent = true;
            }
        }
        let status = child.wait().unwrap();
        (status.code(), out_reader.join().unwrap())
    });
    let id_a = tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();

    // Another process reads the store while A writes.
    let history = ok(cmd(data.path(), &["history"])).await;
    let row = history
        .lines()
        .find(|l| l.contains(&id_a))
        .unwrap_or_else(|| panic!("{history}"));
    assert!(row.contains("running"), "{row}");
    let (records, status) = shown(&ok(cmd(data.path(), &["show", &id_a])).await);
    assert_eq!(status, "running");
    assert!(records > 0 && records < 150, "{records}");

    // A second run saves whole beside it.
    let b = ok(cmd(data.path(), &run_args(&url, "8", "b"))).await;
    let id_b = saved_id(&b);
    let history = ok(cmd(data.path(), &["history"])).await;
    let row = history.lines().find(|l| l.contains(&id_a)).unwrap();
    assert!(row.contains("running"), "A ended before B was saved: {row}");

    let (code, a_stdout) = a_done.await.unwrap();
    assert_eq!(code, Some(0), "{a_stdout}");
    assert_eq!(saved_id(&a_stdout), id_a);
    for (id, n) in [(&id_a, 150), (&id_b, 8)] {
        let (records, status) = shown(&ok(cmd(data.path(), &["show", id])).await);
        assert_eq!((records, status.as_str()), (n, "complete"), "{id}");
    }
    assert!(
        std::fs::read_dir(data.path().join("journals"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "journals are deleted once merged"
    );
    server.shutdown().await.unwrap();
}
