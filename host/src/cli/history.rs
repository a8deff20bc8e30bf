//! `llm-loadtest history`: saved runs, newest first.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::report::document::num;
use crate::store::{self, RunFilter, RunRow};

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Only runs whose model name contains this (any case).
    #[arg(long)]
    pub model: Option<String>,
    /// Only runs whose server URL contains this (any case).
    #[arg(long)]
    pub server: Option<String>,
    /// Only runs started since: a date (2025-03-14), an RFC 3339 time, or an age (7d, 12h).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only runs with this tag (repeatable: all must match).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub remote: crate::remote::RemoteFlag,
}

/// `--since`: a date, a time, or an age before now.
pub fn parse_since(s: &str) -> Result<SystemTime, String> {
    let t = s.trim();
    if t.len() == 10 && t.as_bytes().get(4) == Some(&b'-') {
        return humantime::parse_rfc3339_weak(&format!("{t}T00:00:00Z"))
            .map_err(|e| format!("--since `{s}`: {e}"));
    }
    if let Ok(time) = humantime::parse_rfc3339_weak(t) {
        return Ok(time);
    }
    let age: Duration = humantime::parse_duration(t).map_err(|_| {
        format!(
            "--since `{s}` is not a date (2025-03-14), a time (2025-03-14T10:00:00Z) or an age (7d)"
        )
    })?;
    SystemTime::now()
        .checked_sub(age)
        .ok_or_else(|| format!("--since `{s}` is too far back"))
}

fn requests(r: &RunRow) -> String {
    if r.failed > 0 {
        format!("{} ok, {} failed", r.completed, r.failed)
    } else {
        format!("{} ok", r.completed)
    }
}

/// The history table.
pub fn render(runs: &[RunRow]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(vec![
        "ID",
        "started (UTC)",
        "status",
        "model",
        "server",
        "adapter",
        "levels",
        "requests",
        "best out tok/s",
        "tags",
    ]);
    for r in runs {
        t.add_row(vec![
            Cell::new(&r.id),
            Cell::new(
                r.started_at
                    .get(..19)
                    .unwrap_or(&r.started_at)
                    .replace('T', " "),
            ),
            Cell::new(&r.status),
            Cell::new(&r.model),
            Cell::new(&r.server),
            Cell::new(&r.adapter),
            Cell::new(r.levels.join(",")),
            Cell::new(requests(r)).set_alignment(CellAlignment::Right),
            Cell::new(num(r.best_output_throughput.unwrap_or(f64::NAN)))
                .set_alignment(CellAlignment::Right),
            Cell::new(r.tags.join(",")),
        ]);
    }
    t.to_string()
}

pub fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let since = match args.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    if let Some(remote) = args.remote.chosen()? {
        let mut q = Vec::new();
        for (k, v) in [
            ("model", &args.model),
            ("server", &args.server),
            ("since", &args.since),
        ] {
            if let Some(v) = v {
                q.push(format!("{k}={}", crate::remote::encode(v)));
            }
        }
        if !args.tags.is_empty() {
            q.push(format!(
                "tag={}",
                crate::remote::encode(&args.tags.join(","))
            ));
        }
        let (rows, unreadable) =
            crate::remote::block_on(crate::remote::history(&remote, &q.join("&")))??;
        for e in &unreadable {
            eprintln!("warning: {e}");
        }
        if rows.is_empty() {
            println!("no saved runs match on {}", remote.url());
        } else {
            println!("{}", render(&rows));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    let st = store::open(&dir)?;
    let filter = RunFilter {
        model: args.model,
        server: args.server,
        since,
        tags: args.tags,
    };
    let (runs, unreadable) = store::list(&st, &filter)?;
    for e in &unreadable {
        eprintln!("warning: {e}");
    }
    if runs.is_empty() {
        println!("no saved runs match in {}", dir.display());
    } else {
        let rows: Vec<RunRow> = runs.iter().map(RunRow::of).collect();
        println!("{}", render(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
