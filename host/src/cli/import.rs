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
    #[command(flatten)]
    pub remote: crate::remote::RemoteFlag,
}

/// A result file made ready for the store.
pub struct Prepared {
    pub result: RunResult,
    /// vLLM's per-request arrays as records (ours carry theirs inside the result).
    pub records: Option<Vec<Vec<crate::metrics::RequestRecord>>>,
    pub origin: RunOrigin,
    /// What the import could not carry over, for the user.
    pub notes: Vec<String>,
}

/// Reads `text` (named `name`): our JSON, or vLLM bench serve JSON (with `server`, which
/// vLLM's result does not name), adding `tags`.
pub fn prepare(
    text: &str,
    name: &str,
    server: Option<&str>,
    tags: &[String],
) -> anyhow::Result<Prepared> {
    let value: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{name} is not JSON"))?;
    if import_vllm::looks_like_vllm(&value) {
        let mut imp = import_vllm::import(text, name, tags)?;
        if let Some(server) = server {
            imp.result.settings.server = server.to_string();
        }
        return Ok(Prepared {
            result: imp.result,
            records: Some(vec![imp.records]),
            origin: RunOrigin::Imported {
                file: name.to_string(),
                format: "vllm".to_string(),
            },
            notes: imp.notes,
        });
    }
    let mut result = RunResult::from_json(text).with_context(|| format!("reading {name}"))?;
    for t in tags {
        if !result.settings.tags.contains(t) {
            result.settings.tags.push(t.clone());
        }
    }
    Ok(Prepared {
        result,
        records: None,
        origin: RunOrigin::Imported {
            file: name.to_string(),
            format: "native".to_string(),
        },
        notes: Vec::new(),
    })
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if let Some(remote) = args.remote.chosen()? {
        use crate::remote::encode;
        for path in &args.files {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let body: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let name = path.display().to_string();
            let mut q = format!("name={}", encode(&name));
            if let Some(s) = &args.server {
                q.push_str(&format!("&server={}", encode(s)));
            }
            if !args.tags.is_empty() {
                q.push_str(&format!("&tag={}", encode(&args.tags.join(","))));
            }
            let saved: serde_json::Value = crate::remote::block_on(remote.json(
                http::Method::POST,
                &format!("/api/v1/benchmark/import?{q}"),
                Some(&body),
            ))??;
            for note in saved["notes"].as_array().into_iter().flatten() {
                eprintln!("note: {name}: {}", note.as_str().unwrap_or_default());
            }
            println!(
                "imported {name} as {} on {}",
                saved["id"].as_str().unwrap_or("?"),
                remote.url()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    let st = store::open(&dir)?;
    for path in &args.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path.display().to_string();
        let p = prepare(&text, &name, args.server.as_deref(), &args.tags)?;
        for note in &p.notes {
            eprintln!("note: {name}: {note}");
        }
        let id = store::save_result(&st, p.result, p.records, p.origin)?;
        println!("imported {name} as {id}");
    }
    Ok(ExitCode::SUCCESS)
}
