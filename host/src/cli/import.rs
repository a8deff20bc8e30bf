//! `llm-loadtest import FILE…`: bring results into the store — our own JSON
//! (`export --format json`, `run --output`) or vLLM `bench serve` results —
//! so they can be shown, compared and exported like measured runs.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::result::RunResult;
use crate::result::import_vllm;
use crate::store::{self, RunOrigin};

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Result files: llm-loadtest JSON, or vLLM bench serve JSON (one level each).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The server a vLLM result was measured against (vLLM's result names none; shown as
    /// `unknown` without this).
    #[arg(long)]
    pub server: Option<String>,
    /// Labels added to the imported runs (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    let st = store::open(&dir)?;
    for path in &args.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path.display().to_string();
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{name} is not JSON"))?;
        let id = if import_vllm::looks_like_vllm(&value) {
            let mut imp = import_vllm::import(&text, &name, &args.tags)?;
            if let Some(server) = &args.server {
                imp.result.settings.server = server.clone();
            }
            for note in &imp.notes {
                eprintln!("note: {name}: {note}");
            }
            store::save_result(
                &st,
                imp.result,
                Some(vec![imp.records]),
                RunOrigin::Imported {
                    file: name.clone(),
                    format: "vllm".to_string(),
                },
            )?
        } else {
            let mut result =
                RunResult::from_json(&text).with_context(|| format!("reading {name}"))?;
            for t in &args.tags {
                if !result.settings.tags.contains(t) {
                    result.settings.tags.push(t.clone());
                }
            }
            store::save_result(
                &st,
                result,
                None,
                RunOrigin::Imported {
                    file: name.clone(),
                    format: "native".to_string(),
                },
            )?
        };
        println!("imported {name} as {id}");
    }
    Ok(ExitCode::SUCCESS)
}
