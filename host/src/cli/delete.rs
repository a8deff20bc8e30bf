//! `llm-loadtest delete ID…`: remove saved runs and their records.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::store::{self, Store as _};

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// Run IDs, or unique prefixes of them.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

pub fn run(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    let st = store::open(&dir)?;
    // Resolve every ID first, so a typo deletes nothing.
    let ids = args
        .ids
        .iter()
        .map(|p| store::resolve(&st, p))
        .collect::<Result<Vec<_>, _>>()?;
    for id in ids {
        if st.delete(&id)? {
            println!("deleted {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
