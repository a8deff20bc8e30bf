//! `info`: what the server at `--server` is and serves, and this machine.

use std::process::ExitCode;

use clap::Args;

use crate::engine::{Target, new_client};
use crate::info;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub server: String,
    /// Extra header for every request, `Name: value` (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Bearer token (never printed).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    pub format: String,
}

fn gib(bytes: u64) -> String {
    format!("{} GiB", crate::report::document::gib(bytes))
}

pub fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    if !matches!(args.format.as_str(), "text" | "json") {
        eprintln!("error: --format is text or json, not {}", args.format);
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            eprintln!("error: --header {h:?} is not `Name: value`");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        };
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let target = match Target::new(&args.server, &headers, args.api_key.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let server = rt.block_on(info::server::gather(&new_client(&target, 1)?, &target));
    let host = info::host::gather();
    let info = info::Info { server, host };
    let reached = info.reached();
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("{}", render(&info));
    }
    Ok(if reached {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: {} answered none of the endpoints asked",
            args.server
        );
        ExitCode::from(1)
    })
}

fn render(i: &info::Info) -> String {
    let s = &i.server;
    let unknown = || "unknown".to_string();
    let mut out = vec![
        format!("server   {}", s.url),
        format!("version  {}", s.version.clone().unwrap_or_else(unknown)),
    ];
    if s.models.is_empty() {
        out.push("models   unknown (no endpoint listed any)".into());
    }
    for m in &s.models {
        out.push(format!(
            "model    {}  context {}  (from {})",
            m.id,
            m.context_length
                .map_or_else(unknown, |c| format!("{c} tokens")),
            m.sources.join(", ")
        ));
    }
    let h = &i.host;
    out.push(format!(
        "host     {} {}, {} CPUs, {} memory",
        h.os,
        h.arch,
        h.cpus.map_or_else(unknown, |n| n.to_string()),
        h.memory_bytes.map_or_else(unknown, gib)
    ));
    for g in &h.gpus {
        out.push(format!(
            "gpu {}    {} {} {}",
            g.index,
            g.name,
            gib(g.memory_bytes),
            g.uuid
        ));
    }
    if let Some(d) = &h.driver_version {
        out.push(format!("driver   {d}"));
    }
    if let Some(note) = &h.gpu_note {
        out.push(format!("gpus     none listed: {note}"));
    }
    out.join("\n")
}
