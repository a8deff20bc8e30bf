//! The command line as a client of `serve` (`--remote`, key from LLM_LOADTEST_API_KEY):
//! `run` submits and prints the table, writes `--output` here; `history`, `show`, `export`
//! and `compare` read the server's store; refusals and a wrong key end with the server's
//! words and a non-zero exit.
use std::process::{Command, Output};

use crate::api_support;
use crate::store_support::{cmd, saved_id};
use crate::support;

fn remote(data: &std::path::Path, url: &str, key: &str, args: &[&str]) -> Command {
    let mut c = cmd(data, args);
    c.arg("--remote").arg(url).env("LLM_LOADTEST_API_KEY", key);
    c
}

async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_runs_and_reads_through_a_server() {
    let sim = support::sim(support::fixed(20, 10)).await;
    let s = api_support::server(1, 64).await;
    // A directory of this machine that must stay untouched: everything is the server's.
    let here = tempfile::tempdir().unwrap();
    let sim_url = format!("http://{}", sim.local_addr());
    let out_file = here.path().join("out.json");
    let run = |tag: &'static str, out: Option<&std::path::Path>| {
        let mut c = remote(
            here.path(),
            &s.url,
            &s.runner,
            &[
                "run",
                "--server",
                &sim_url,
                "--model",
                "sim-llama",
                "--concurrency",
                "2",
                "--num-prompts",
                "10",
                "--output-len",
                "8",
                "--tokenizer",
                "cl100k_base",
                "--tag",
                tag,
                "--no-progress",
            ],
        );
        if let Some(p) = out {
            c.arg("--output").arg(p);
        }
        output(c)
    };
    let first = run("remote", Some(&out_file)).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("submitted to"), "{stderr}");
    assert!(
        stdout.contains("c=2") && stdout.contains("(complete) on"),
        "{stdout}"
    );
    let id = saved_id(&stdout);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(written["levels"][0]["summary"]["completed"], 10);
    assert!(
        !here.path().join("runs.sled").exists(),
        "nothing is saved on this machine"
    );
    let second = run("remote", None).await;
    assert_eq!(second.status.code(), Some(0), "{:?}", text(&second));
    let id2 = saved_id(&text(&second).0);

    let v = &s.viewer;
    let history = output(remote(
        here.path(),
        &s.url,
        v,
        &["history", "--tag", "remote"],
    ))
    .await;
    let (h, _) = text(&history);
    assert!(
        h.contains(&id) && h.contains(&id2) && h.contains("complete"),
        "{h}"
    );
    let show = output(remote(here.path(), &s.url, v, &["show", &id])).await;
    let (sh, _) = text(&show);
    assert!(sh.contains(&format!("run {id} (complete)")), "{sh}");
    assert!(sh.contains("10 request records saved"), "{sh}");
    let csv = output(remote(
        here.path(),
        &s.url,
        v,
        &["export", &id, "--format", "csv"],
    ))
    .await;
    let (c, _) = text(&csv);
    assert!(c.lines().nth(1).is_some_and(|l| l.starts_with(&id)), "{c}");
    let file = here.path().join("first.json");
    let file = file.to_str().unwrap();
    let export = remote(here.path(), &s.url, v, &["export", &id, "--out", file]);
    assert_eq!(output(export).await.status.code(), Some(0));
    let import = remote(
        here.path(),
        &s.url,
        &s.runner,
        &["import", "--tag", "again", file],
    );
    let imported = output(import).await;
    let (im, ie) = text(&imported);
    assert_eq!(imported.status.code(), Some(0), "{ie}");
    assert!(im.contains("imported") && im.contains(" on "), "{im}");
    let again = output(remote(
        here.path(),
        &s.url,
        v,
        &["history", "--tag", "again"],
    ))
    .await;
    assert!(text(&again).0.contains("10 ok"), "{:?}", text(&again));
    let cmp = output(remote(here.path(), &s.url, v, &["compare", &id, &id2])).await;
    let (cm, ce) = text(&cmp);
    assert_eq!(cmp.status.code(), Some(0), "{ce}");
    assert!(cm.contains("comparison") && cm.contains("c=2"), "{cm}");

    // Refused by the server: its words, exit 2.
    let refused = output(remote(
        here.path(),
        &s.url,
        &s.runner,
        &[
            "run",
            "--server",
            "http://10.9.9.9:1",
            "--concurrency",
            "1",
            "--no-progress",
        ],
    ))
    .await;
    let (_, re) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{re}");
    assert!(re.contains("10.9.9.9:1 is not a target"), "{re}");
    // A viewer cannot start runs; a wrong key reads nothing.
    let viewer_run = output(remote(
        here.path(),
        &s.url,
        v,
        &["run", "--server", &sim_url],
    ))
    .await;
    let (_, ve) = text(&viewer_run);
    assert_ne!(viewer_run.status.code(), Some(0));
    assert!(ve.contains("HTTP 403"), "{ve}");
    let wrong = output(remote(here.path(), &s.url, "llt_wrong", &["history"])).await;
    let (_, we) = text(&wrong);
    assert_ne!(wrong.status.code(), Some(0));
    assert!(we.contains("HTTP 401") && !we.contains("llt_wrong"), "{we}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommend_searches_through_a_server_and_answers_here() {
    let sim = support::sim(support::fixed(2, 1)).await;
    let s = api_support::server(1, 64).await;
    let here = tempfile::tempdir().unwrap();
    let sim_url = format!("http://{}", sim.local_addr());
    let answer = here.path().join("rec.json");
    let mut c = remote(
        here.path(),
        &s.url,
        &s.runner,
        &crate::recommend_cli::small_search(
            &sim_url,
            &[
                "--slo",
                "ttft:10s",
                "--peak-concurrency",
                "10",
                "--max-probe-concurrency",
                "2",
                "--policy-option",
                "min-requests=8",
            ],
        ),
    );
    c.arg("--recommendation-output").arg(&answer);
    let out = output(c).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("as search"), "{stderr}");
    assert!(
        stdout.contains("at least 2: the largest probe allowed passed")
            && stdout.contains("need 5 × "),
        "{stdout}"
    );
    let id = saved_id(&stdout);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&answer).unwrap()).unwrap();
    assert_eq!(written["replicas"], 5);
    let saved = s
        .get(&format!("/api/v1/benchmark/result/{id}"), &s.viewer)
        .await;
    assert_eq!(saved.json()["result"]["recommendation"]["replicas"], 5);
    assert!(
        !here.path().join("runs.sled").exists(),
        "nothing is stored on this machine"
    );

    // Refused by the server: its words, and the usage exit code.
    let mut c = remote(
        here.path(),
        &s.url,
        &s.runner,
        &[
            "recommend",
            "--server",
            "http://10.1.2.3:8000",
            "--model",
            "m",
            "--slo",
            "ttft:1s",
            "--peak-concurrency",
            "4",
            "--no-progress",
        ],
    );
    c.arg("--tokenizer").arg("cl100k_base");
    let out = output(c).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused the search") && stderr.contains("run.server"),
        "{stderr}"
    );
}
