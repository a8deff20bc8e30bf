//! Honest exits: a server that cannot answer stops the run at the pre-flight request with its
//! own words; a level with no success exits non-zero; a level with many failures says its
//! numbers cannot be trusted. Measured figures are kept in every case.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use llm_loadtest_sim::FaultKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::run_cli::cmd;
use crate::support::{fixed, sim};

/// vLLM's answer to a model it does not serve.
const NO_SUCH_MODEL: &str = r#"{"object":"error","message":"The model `nope` does not exist.","type":"NotFoundError","param":null,"code":404}"#;

/// A server that answers every request 404 with [`NO_SUCH_MODEL`] and counts the POSTs.
async fn refusing_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if head.starts_with(b"POST") {
                    counted.fetch_add(1, Relaxed);
                }
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{NO_SUCH_MODEL}",
                    NO_SUCH_MODEL.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, posts)
}

fn run_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--server",
        url,
        "--adapter",
        "vllm",
        "--model",
        "nope",
        "--concurrency",
        "2",
        "--num-prompts",
        "20",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--tokenizer",
        "cl100k_base",
        "--no-progress",
        "--no-save",
    ];
    args.extend_from_slice(extra);
    args
}

async fn output(args: &[&str]) -> std::process::Output {
    let mut c = cmd(args);
    c.env("LLM_LOADTEST_NVML_LIB", "/nonexistent/no-nvml-here.so");
    tokio::process::Command::from(c).output().await.unwrap()
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_model_stops_the_run_at_the_pre_flight_with_the_servers_words() {
    let (url, posts) = refusing_server().await;
    let out = output(&run_args(&url, &[])).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("the pre-flight request failed (http-status): HTTP 404: ")
            && stderr.contains("The model `nope` does not exist.")
            && stderr.contains("--no-preflight"),
        "{stderr}"
    );
    // Said once, not repeated by its cause.
    assert_eq!(stderr.matches("pre-flight").count(), 1, "{stderr}");
    // One generation request reached the server: the pre-flight, not a level of 20.
    assert_eq!(posts.load(Relaxed), 1);

    // Skipped, the level runs, every request fails, the figures are printed and the exit
    // code says no request succeeded.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    let file_arg = file.display().to_string();
    let out = output(&run_args(&url, &["--no-preflight", "--output", &file_arg])).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(5), "{stdout}{stderr}");
    assert!(
        stderr.contains("no request succeeded at c=2 (exit code 5)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("c=2: these numbers cannot be trusted: none of its 20 requests succeeded"),
        "{stdout}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(r["levels"][0]["summary"]["failed"], 20);
    assert_eq!(posts.load(Relaxed), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_stops_the_run_at_the_pre_flight() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = output(&run_args(&url, &[])).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("the pre-flight request failed (connect): could not connect to"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_where_many_requests_failed_says_its_numbers_cannot_be_trusted() {
    // Half the requests (the simulator's fault draw is seeded) answer HTTP 500.
    let mut cfg = fixed(2, 1);
    cfg.fault_rate = 0.5;
    cfg.faults = vec![FaultKind::Http500];
    let server = sim(cfg).await;
    let url = format!("http://{}", server.local_addr());
    let out = output(&run_args(&url, &["--no-preflight"])).await;
    let (stdout, stderr) = text(&out);
    // Some succeeded: a usable, if doubtful, measurement.
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("c=2: these numbers cannot be trusted: "))
        .unwrap_or_else(|| panic!("no trust line in:\n{stdout}"));
    assert!(
        line.contains("of 20 requests") && line.contains("above 10 %)"),
        "{line}"
    );
    server.shutdown().await.unwrap();
}
