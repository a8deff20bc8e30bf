//! `run --remote URL`: the run is submitted to a `serve` instance, which sends the requests
//! and keeps the result; this follows its progress, prints the same table and notes as a
//! local run, writes `--output` here, and exits with the same codes. Ctrl-C asks the server
//! to stop the run, whose measured part it keeps.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde::Deserialize;
use serde_json::Value;

use super::run::{EXIT_INTERRUPTED, RunArgs, verdict, write_output};
use crate::remote::{Remote, RemoteError, encode};
use crate::result::RunResult;

/// How often the run's state is asked for.
const POLL: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct Saved {
    result: RunResult,
}

/// One line of progress from the job's state.
fn progress(state: &Value) -> String {
    let status = state["status"].as_str().unwrap_or("?");
    let c = &state["current"];
    if c.is_null() {
        return status.to_string();
    }
    let ms = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.1} ms"));
    format!(
        "{} {:.0} s: {} sent, {} ok, {} failed, {} in flight, TTFT p99 {}",
        c["level"].as_str().unwrap_or("?"),
        c["elapsed_s"].as_f64().unwrap_or(0.0),
        c["sent"],
        c["completed"],
        c["failed"],
        c["in_flight"],
        ms(&c["ttft_p99_ms"])
    )
}

/// Submits `body` at `path` (a `what`: run or search) and follows it to its end: its ID, its
/// last state, and whether it was asked to stop. `None` when the server refused a setting,
/// which is said on stderr in the server's words.
pub(super) async fn submit_and_follow(
    remote: &Remote,
    path: &str,
    body: &Value,
    target_key: Option<&str>,
    what: &str,
    quiet: bool,
) -> Result<Option<(String, Value, bool)>, RemoteError> {
    let url = remote.url();
    let job = match remote.submit(path, body, target_key).await {
        Err(RemoteError::Refused {
            status: 422,
            message,
            ..
        }) => {
            eprintln!("error: {url} refused the {what}: {message}");
            return Ok(None);
        }
        other => other?,
    };
    let id = job["id"].as_str().unwrap_or_default().to_string();
    eprintln!("submitted to {url} as {what} {id}");
    let (end, cancelled) = until_ended(remote, &id, quiet).await?;
    Ok(Some((id, end, cancelled)))
}

/// Follows job `id` on `remote` until it ends, printing its progress unless `quiet`; Ctrl-C
/// asks the server to stop it. The job's last state, and whether it was asked to stop.
pub(super) async fn until_ended(
    remote: &Remote,
    id: &str,
    quiet: bool,
) -> Result<(Value, bool), RemoteError> {
    let url = remote.url();
    let state_path = format!("/api/v1/benchmark/run/{}", encode(id));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut cancelled = false;
    let mut last = String::new();
    loop {
        let state: Value = remote.json(Method::GET, &state_path, None).await?;
        if !matches!(state["status"].as_str(), Some("queued" | "running")) {
            return Ok((state, cancelled));
        }
        let line = progress(&state);
        if line != last && !quiet {
            eprintln!("{line}");
            last = line;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = &mut ctrl_c, if !cancelled => {
                cancelled = true;
                eprintln!("\ninterrupted: asking {url} to stop {id}; what it measured is kept");
                remote.call(Method::POST, &format!("{state_path}/cancel"), None).await?;
            }
        }
    }
}

/// `run`'s settings as a server takes them: what names this machine's files stays here.
pub(super) fn settings_to_send(args: &RunArgs) -> anyhow::Result<Value> {
    let mut sent = args.clone();
    sent.output = None;
    sent.output_format = None;
    sent.data_dir = None;
    sent.plugin_cache = None;
    Ok(serde_json::to_value(&sent)?)
}

pub fn run(args: RunArgs, remote: Remote) -> anyhow::Result<ExitCode> {
    // The result is written here at the end.
    let body = settings_to_send(&args)?;
    crate::remote::block_on(follow(args, remote, body))?
}

async fn follow(args: RunArgs, remote: Remote, body: Value) -> anyhow::Result<ExitCode> {
    let url = remote.url();
    let Some((id, end, cancelled)) = submit_and_follow(
        &remote,
        "/api/v1/benchmark/run",
        &body,
        args.api_key.as_deref(),
        "run",
        args.no_progress,
    )
    .await?
    else {
        return Ok(ExitCode::from(super::EXIT_USAGE));
    };
    let status = end["status"].as_str().unwrap_or("?");
    if status == "failed" {
        eprintln!(
            "error: run {id} failed on {url}: {}",
            end["reason"].as_str().unwrap_or("no reason given")
        );
        return Ok(ExitCode::from(1));
    }
    let path = format!("/api/v1/benchmark/result/{}?records=true", encode(&id));
    let saved: Saved = remote.json(Method::GET, &path, None).await?;
    let mut result = saved.result;
    let records: Vec<_> = result
        .levels
        .iter_mut()
        .map(|l| l.requests.take().unwrap_or_default())
        .collect();
    // The records go in the written result only when asked for, as in a local run.
    if args.save_requests {
        for (l, r) in result.levels.iter_mut().zip(&records) {
            l.requests = Some(r.clone());
        }
    }
    println!("{}", crate::report::table::render(&result));
    for note in crate::report::table::notes(&result) {
        println!("{note}");
    }
    if let Some(p) = &args.output {
        let out = crate::runner::RunOutput {
            result: result.clone(),
            records: Arc::new(records),
        };
        write_output(p, args.output_format.as_deref(), &out)?;
        println!("result written to {}", p.display());
    }
    println!("run saved as {id} ({status}) on {url}: llm-loadtest show {id} --remote {url}");
    if let Some(reason) = end["reason"].as_str() {
        println!("{reason}");
    }
    if cancelled || status == "cancelled" {
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(verdict(&result, args.fail_under_attainment))
}
