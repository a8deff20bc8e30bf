//! `llm-loadtest merge SHARD_RESULT…`: one run from the results of a sharded run's shards
//! (`run --shard I/N --output FILE`), printed like `run` prints one, written and saved on request.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::merge::{MergeReport, ShardInput};
use crate::result::RunResult;
use crate::store::{self, RunOrigin};

/// Exit code when the merged run is partial: a shard is missing or stopped before a level.
/// What was merged is still printed, written and saved.
pub const EXIT_PARTIAL: u8 = 6;

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The shards' result files (`run --output`), one per shard.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Save the merged run in the store.
    #[arg(long)]
    pub save: bool,
    /// Write the merged result here (JSON).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

pub fn run(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut inputs = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {name}"))?;
        let result = RunResult::from_json(&text).with_context(|| format!("reading {name}"))?;
        inputs.push(ShardInput { name, result });
    }
    let merged = crate::merge::merge(inputs)?;
    let Some(report) = merged.merge.clone() else {
        anyhow::bail!("the merge produced no report");
    };
    println!("{}", crate::report::table::render(&merged));
    for line in skew_lines(&report) {
        println!("{line}");
    }
    for note in crate::report::table::notes(&merged) {
        println!("{note}");
    }
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&merged)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if args.save {
        let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
        let st = store::open(&dir)?;
        let origin = RunOrigin::Imported {
            file: report.sources.join(", "),
            format: "merged shards".to_owned(),
        };
        let id = store::save_result(&st, merged, None, origin)?;
        println!("saved as {id}");
    }
    Ok(if report.partial() {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

/// Per level, how the shards ran it: start offsets, lateness, shares, failures, client limits.
pub fn skew_lines(report: &MergeReport) -> Vec<String> {
    let mut out = vec![format!(
        "\nmerged {} of {} shards ({})",
        report.merged.len(),
        report.shards,
        report.sources.join(", ")
    )];
    if !report.missing.is_empty() {
        out.push(format!(
            "PARTIAL: shard(s) {} missing — their requests are not in this result",
            one_based(&report.missing)
        ));
    }
    for level in &report.levels {
        out.push(format!(
            "  {}: merged from {}{}",
            level.label,
            if level.method == "records" {
                "every request's record (exact)"
            } else {
                "histograms (0.1 % resolution; pass --save-requests to the shards for exact figures)"
            },
            if level.missing.is_empty() {
                String::new()
            } else {
                format!("; PARTIAL: shard(s) {} did not run it", one_based(&level.missing))
            }
        ));
        for s in &level.shards {
            let late = s
                .late_ms
                .map_or(String::new(), |l| format!(", {l:.0} ms after due"));
            let client = match &s.client {
                Some(c) if c.limited => format!(
                    ", CLIENT-LIMITED ({})",
                    c.why.as_deref().unwrap_or("its own CPU or event loop")
                ),
                _ => String::new(),
            };
            out.push(format!(
                "    shard {}: started +{:.1} ms{late}, {} requests ({:.1} %), {} failed{client}",
                s.shard + 1,
                s.start_offset_ms,
                s.requests,
                s.share_pct,
                s.failed
            ));
        }
    }
    out
}

fn one_based(shards: &[u32]) -> String {
    shards
        .iter()
        .map(|s| (s + 1).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
