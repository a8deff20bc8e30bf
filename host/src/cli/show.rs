//! `llm-loadtest show ID`: one saved run, as `run` printed it.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::store;

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// Run ID, or a unique prefix of one.
    pub id: String,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub remote: crate::remote::RemoteFlag,
}

pub fn run(args: ShowArgs) -> anyhow::Result<ExitCode> {
    if let Some(remote) = args.remote.chosen()? {
        #[derive(serde::Deserialize)]
        struct Answer {
            id: String,
            status: String,
            note: Option<String>,
            result: crate::result::RunResult,
        }
        let path = format!(
            "/api/v1/benchmark/result/{}?records=true",
            crate::remote::encode(&args.id)
        );
        let a: Answer = crate::remote::block_on(remote.json(http::Method::GET, &path, None))??;
        let saved = a
            .result
            .levels
            .iter()
            .map(|l| l.requests.as_ref().map_or(0, Vec::len))
            .sum();
        print(&a.id, &a.status, a.note.as_deref(), &a.result, saved);
        return Ok(ExitCode::SUCCESS);
    }
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    let st = store::open(&dir)?;
    let run = store::load(&st, &args.id)?;
    drop(st);
    let e = &run.entry;
    // A run still going has records in its journal before any level is in its result.
    let saved = run.records.iter().map(Vec::len).sum();
    print(
        &e.id,
        e.status.name(),
        e.note.as_deref(),
        &run.result_with_records(),
        saved,
    );
    Ok(ExitCode::SUCCESS)
}

/// A saved run as `run` printed it; `r` carries its records (`requests` in each level), of
/// which `saved` were saved.
fn print(id: &str, status: &str, note: Option<&str>, r: &crate::result::RunResult, saved: usize) {
    let s = &r.settings;
    println!("run {id} ({status})");
    println!("  started  {}   finished {}", r.started_at, r.finished_at);
    println!(
        "  server   {} ({})   model {}",
        s.server,
        s.server_version.as_deref().unwrap_or("version unknown"),
        s.model
    );
    println!(
        "  adapter  {} {} sha256 {} ({})",
        r.adapter.name,
        r.adapter.version,
        r.adapter.sha256.get(..12).unwrap_or(&r.adapter.sha256),
        r.adapter.source
    );
    println!("  dataset  {}   tokenizer {}", s.dataset, s.tokenizer);
    if !s.tags.is_empty() {
        println!("  tags     {}", s.tags.join(", "));
    }
    println!("  records  {saved} request records saved");
    if let Some(note) = note {
        println!("  note     {note}");
    }
    println!("{}", crate::report::table::render(r));
    if let Some(rec) = &r.recommendation {
        println!("{}", super::recommend::render(rec, false));
        println!("{}", crate::report::capacity::bars(rec));
    }
    for note in crate::report::table::notes(r) {
        println!("{note}");
    }
    let over_time = crate::report::timeline::terminal(r, 60);
    if !over_time.is_empty() {
        println!("\nover time");
        for line in over_time {
            println!("{line}");
        }
    }
}
