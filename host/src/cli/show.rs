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
}

pub fn run(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    let st = store::open(&dir)?;
    let run = store::load(&st, &args.id)?;
    let e = &run.entry;
    let r = &e.result;
    let s = &r.settings;
    println!("run {} ({})", e.id, e.status.name());
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
    let saved: usize = run.records.iter().map(Vec::len).sum();
    println!("  records  {saved} request records saved");
    if let Some(note) = &e.note {
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
    let over_time = crate::report::timeline::terminal(&run.result_with_records(), 60);
    if !over_time.is_empty() {
        println!("\nover time");
        for line in over_time {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
