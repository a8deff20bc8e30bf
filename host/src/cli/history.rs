//! `llm-loadtest history`: saved runs, newest first.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::report::document::num;
use crate::store::{self, RunEntry, RunFilter};

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

fn requests(e: &RunEntry) -> String {
    let (ok, failed) = e.result.levels.iter().fold((0, 0), |(o, f), l| {
        (o + l.summary.completed, f + l.summary.failed)
    });
    if failed > 0 {
        format!("{ok} ok, {failed} failed")
    } else {
        format!("{ok} ok")
    }
}

/// The history table.
pub fn render(runs: &[RunEntry]) -> String {
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
    for e in runs {
        let r = &e.result;
        let levels: Vec<&str> = if r.levels.is_empty() {
            e.plans.iter().map(|p| p.label.as_str()).collect()
        } else {
            r.levels.iter().map(|l| l.label.as_str()).collect()
        };
        let best = r
            .levels
            .iter()
            .map(|l| l.summary.output_throughput)
            .fold(f64::NAN, f64::max);
        t.add_row(vec![
            Cell::new(&e.id),
            Cell::new(
                r.started_at
                    .get(..19)
                    .unwrap_or(&r.started_at)
                    .replace('T', " "),
            ),
            Cell::new(e.status.name()),
            Cell::new(&r.settings.model),
            Cell::new(&r.settings.server),
            Cell::new(&r.adapter.name),
            Cell::new(levels.join(",")),
            Cell::new(requests(e)).set_alignment(CellAlignment::Right),
            Cell::new(num(best)).set_alignment(CellAlignment::Right),
            Cell::new(r.settings.tags.join(",")),
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
        println!("{}", render(&runs));
    }
    Ok(ExitCode::SUCCESS)
}
