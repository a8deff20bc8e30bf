//! `llm-loadtest serve` as a process: keys managed from the command line, a public bind
//! refused without keys, and Ctrl-C saving the run in progress as interrupted.
use std::io::BufRead as _;
use std::process::Stdio;

use llm_loadtest::api::keys::{self, Role};
use serde_json::json;

use crate::api_support::{self, Server};
use crate::store_support::{cmd, ok};
use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_managed_from_the_command_line_and_a_public_bind_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let public = tokio::task::spawn_blocking({
        let mut c = cmd(dir.path(), &["serve", "--bind", "0.0.0.0:0"]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(public.status.code(), Some(2));
    let err = String::from_utf8_lossy(&public.stderr);
    assert!(err.contains("has no API keys"), "{err}");

    let key = ok(cmd(
        dir.path(),
        &[
            "serve", "keys", "create", "--name", "ci", "--role", "runner",
        ],
    ))
    .await;
    let key = key.trim();
    assert!(key.starts_with("llt_") && !key.contains(' '), "{key}");
    let list = ok(cmd(dir.path(), &["serve", "keys", "list"])).await;
    assert!(
        list.contains("runner") && list.contains("ci") && list.contains("live"),
        "{list}"
    );
    assert!(!list.contains(key), "the list never shows a key");
    let stored = std::fs::read_to_string(dir.path().join(keys::FILE)).unwrap();
    assert!(!stored.contains(key), "only its hash is stored");
    let revoked = ok(cmd(dir.path(), &["serve", "keys", "revoke", "ci"])).await;
    assert!(revoked.contains("revoked key `ci`"), "{revoked}");
    let list = ok(cmd(dir.path(), &["serve", "keys", "list"])).await;
    assert!(list.contains("revoked 20"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_server_and_saves_its_run_as_interrupted() {
    let sim = support::sim(support::fixed(20, 10)).await;
    let dir = tempfile::tempdir().unwrap();
    let (admin, _) = keys::create(dir.path(), "a", Role::Admin).unwrap();
    let mut child = cmd(dir.path(), &["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    let url = first
        .trim()
        .strip_prefix("serving on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let data = dir.path().to_path_buf();
    let s = Server::at(url, dir, [admin.clone(), admin.clone(), admin]);
    let body = json!({
        "server": format!("http://{}", sim.local_addr()),
        "model": "sim-llama",
        "concurrency": [2],
        "duration": "10m",
        "output-len": 16,
        "tokenizer": "cl100k_base",
        "tags": ["stopped"],
    })
    .to_string();
    let id = s.submit(&body).await;
    let mut ws = s.watch(&id, &s.viewer).await;
    api_support::until_measuring(&mut ws).await;
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let last = api_support::last_or_error(&mut ws).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = last.unwrap_or_else(|e| panic!("{e}; the server said: {stderr}"));
    assert_eq!(last["event"], "finished", "{last} {stderr}");
    assert_eq!(last["status"], "interrupted", "{last}");
    assert!(
        last["reason"].as_str().unwrap().contains("server stopped"),
        "{last}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let history = ok(cmd(&data, &["history", "--tag", "stopped"])).await;
    assert!(
        history.contains(&id) && history.contains("interrupted"),
        "{history}"
    );
}
