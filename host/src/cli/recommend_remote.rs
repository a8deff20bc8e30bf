//! `recommend --remote URL`: the search is submitted to a `serve` instance, which runs the
//! probes and keeps them as one run; this follows it probe by probe, prints the same answer
//! as a local search, writes `--recommendation-output` here, and exits with the same codes.
use std::process::ExitCode;

use anyhow::Context as _;
use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::recommend::{EXIT_POLICY_FAILED, EXIT_UNREACHABLE_TARGET, RecommendArgs, render};
use super::run::EXIT_INTERRUPTED;
use super::run_remote::{settings_to_send, submit_and_follow};
use crate::remote::{Remote, RemoteError, encode};
use crate::result::RunResult;

#[derive(Deserialize)]
struct Saved {
    result: RunResult,
}

/// The body `POST /api/v1/recommend` takes: the search's settings, `run`'s under `run`.
fn body(args: &RecommendArgs) -> anyhow::Result<Value> {
    let mut body = json!({
        "peak-concurrency": args.peak_concurrency,
        "goodput-target": args.goodput_target,
        "gpus-per-replica": args.gpus_per_replica,
        "policy-options": args.policy_options,
        "run": settings_to_send(&args.run)?,
    });
    let optional = [
        ("gpu-type", json!(args.gpu_type)),
        ("cost-per-gpu-hour", json!(args.cost_per_gpu_hour)),
        ("max-probe-concurrency", json!(args.max_probe_concurrency)),
        ("max-duration", json!(args.max_duration)),
        ("policy", json!(args.policy)),
    ];
    for (k, v) in optional {
        if !v.is_null() {
            body[k] = v;
        }
    }
    Ok(body)
}

pub fn run(args: RecommendArgs, remote: Remote) -> anyhow::Result<ExitCode> {
    let body = body(&args)?;
    crate::remote::block_on(follow(args, remote, body))?
}

async fn follow(args: RecommendArgs, remote: Remote, body: Value) -> anyhow::Result<ExitCode> {
    let url = remote.url();
    let Some((id, end, cancelled)) = submit_and_follow(
        &remote,
        "/api/v1/recommend",
        &body,
        args.run.api_key.as_deref(),
        "search",
        args.run.no_progress,
    )
    .await?
    else {
        return Ok(ExitCode::from(super::EXIT_USAGE));
    };
    let status = end["status"].as_str().unwrap_or("?");
    let reason = end["reason"].as_str();
    let path = format!("/api/v1/benchmark/result/{}", encode(&id));
    // A search that failed before its first probe saved nothing.
    let saved: Option<Saved> = match remote.json(Method::GET, &path, None).await {
        Ok(s) => Some(s),
        Err(RemoteError::Refused { status: 404, .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if saved.is_some() {
        println!("probes saved as run {id} on {url}: llm-loadtest show {id} --remote {url}");
    }
    let rec = saved.and_then(|s| s.result.recommendation);
    if status == "failed" {
        let why = reason.unwrap_or("no reason given");
        eprintln!("error: search {id} failed on {url}: {why}");
        if rec.is_none() {
            let policy = why.contains("recommendation policy");
            return Ok(ExitCode::from(if policy { EXIT_POLICY_FAILED } else { 1 }));
        }
    } else if let Some(r) = reason {
        eprintln!("{r}");
    }
    let Some(rec) = rec else {
        eprintln!("error: no probe was decided ({status})");
        return Ok(ExitCode::from(1));
    };
    println!("{}", render(&rec, false));
    if !args.run.no_progress {
        println!("{}", crate::report::capacity::bars(&rec));
    }
    if let Some(p) = &args.recommendation_output {
        let json = serde_json::to_string_pretty(&rec)?;
        std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?;
        println!("recommendation written to {}", p.display());
    }
    Ok(if cancelled || status == "cancelled" {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if status == "failed" {
        ExitCode::from(1)
    } else if rec.replicas.is_none() {
        ExitCode::from(EXIT_UNREACHABLE_TARGET)
    } else {
        ExitCode::SUCCESS
    })
}
