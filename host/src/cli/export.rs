//! `llm-loadtest export ID --format json|csv|md|html|vllm [--out FILE]`.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::metrics::Distribution;
use crate::report::{document, html, markdown};
use crate::store::{self, StoredRun};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// The result with every request's record (reads back with `import`).
    Json,
    /// One row per level.
    Csv,
    /// Markdown tables, charts as SVG files beside it (with --out).
    Md,
    /// One standalone HTML page with inline SVG charts.
    Html,
    /// vLLM bench serve JSON, one file per level (needs --out).
    Vllm,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Run ID, or a unique prefix of one.
    pub id: String,
    #[arg(long, value_enum, default_value = "json")]
    pub format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub remote: crate::remote::RemoteFlag,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per level: load, counts, throughput, latency percentiles, goodput.
pub fn csv(run: &StoredRun) -> String {
    let mut header: Vec<String> = [
        "run_id",
        "level",
        "interrupted",
        "requests",
        "completed",
        "failed",
        "duration_s",
        "request_throughput",
        "output_throughput",
        "total_token_throughput",
        "peak_concurrency",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for m in ["ttft", "tpot", "itl", "e2el"] {
        for p in ["mean", "p50", "p90", "p95", "p99", "p99_9"] {
            header.push(format!("{m}_{p}_ms"));
        }
    }
    header.extend(["goodput_rps".to_string(), "attainment_pct".to_string()]);
    let mut out = header.join(",") + "\n";
    for l in &run.entry.result.levels {
        let s = &l.summary;
        let mut row = vec![
            csv_field(&run.entry.id),
            csv_field(&l.label),
            l.interrupted.to_string(),
            s.requests.to_string(),
            s.completed.to_string(),
            s.failed.to_string(),
            s.duration_s.to_string(),
            s.request_throughput.to_string(),
            s.output_throughput.to_string(),
            s.total_token_throughput.to_string(),
            s.peak_concurrency.to_string(),
        ];
        for d in [&s.ttft_ms, &s.tpot_ms, &s.itl_ms, &s.e2el_ms] {
            let f = |v: f64, d: &Distribution| {
                if d.count > 0 {
                    v.to_string()
                } else {
                    String::new()
                }
            };
            row.extend([
                f(d.mean, d),
                f(d.p50, d),
                f(d.p90, d),
                f(d.p95, d),
                f(d.p99, d),
                f(d.p99_9, d),
            ]);
        }
        match &s.goodput {
            Some(g) => row.extend([g.goodput_rps.to_string(), g.attainment_pct.to_string()]),
            None => row.extend([String::new(), String::new()]),
        }
        let _ = writeln!(out, "{}", row.join(","));
    }
    out
}

/// Writes `text` to `out`, saying where, or prints it.
pub fn emit(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("written to {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Writes a Markdown report to `path`, its charts as SVG files beside it, and says where.
pub fn write_markdown(doc: &document::Document, path: &Path) -> anyhow::Result<()> {
    let charts =
        markdown::write(doc, path).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "written to {} (charts in {})",
        path.display(),
        charts.display()
    );
    Ok(())
}

/// A run in one format as one text: what `export` prints without `--out`, and what the API
/// answers. Markdown comes without its chart files; vLLM's one file per level comes as a JSON
/// array of the level files.
pub fn render(run: &StoredRun, format: ExportFormat) -> anyhow::Result<String> {
    // With its records, so the report can place the client's own throughput on the same time
    // axis as the readings taken beside the run.
    let with_records = run.result_with_records();
    let doc = || {
        document::run_document(
            &run.entry.id,
            run.entry.status.name(),
            run.entry.note.as_deref(),
            &with_records,
        )
    };
    Ok(match format {
        ExportFormat::Json => serde_json::to_string_pretty(&with_records)? + "\n",
        ExportFormat::Csv => csv(run),
        ExportFormat::Html => html::render(&doc()?),
        ExportFormat::Md => markdown::render(&doc()?, None),
        ExportFormat::Vllm => {
            let r = &run.entry.result;
            let levels: Vec<serde_json::Value> = r
                .levels
                .iter()
                .enumerate()
                .map(|(i, l)| crate::result::vllm::level_json(r, l, run.level_records(i)))
                .collect();
            serde_json::to_string_pretty(&levels)? + "\n"
        }
    })
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if let Some(remote) = args.remote.chosen()? {
        let format = args
            .format
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        let path = format!(
            "/api/v1/benchmark/export/{}?format={format}",
            crate::remote::encode(&args.id)
        );
        let text = crate::remote::block_on(remote.text(http::Method::GET, &path, None))??;
        match args.format {
            ExportFormat::Md if args.out.is_some() => {
                eprintln!("note: from a server, Markdown comes without its chart files");
            }
            ExportFormat::Vllm => {
                eprintln!("note: from a server, vLLM's files come as one JSON array, a level each");
            }
            _ => {}
        }
        emit(args.out.as_deref(), &text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    let st = store::open(&dir)?;
    let run = store::load(&st, &args.id)?;
    drop(st);
    let out = args.out.as_deref();
    match (args.format, out) {
        (ExportFormat::Md, Some(p)) => {
            let doc = document::run_document(
                &run.entry.id,
                run.entry.status.name(),
                run.entry.note.as_deref(),
                &run.result_with_records(),
            )?;
            write_markdown(&doc, p)?;
        }
        (ExportFormat::Vllm, None) => {
            eprintln!("error: --format vllm writes one file per level: pass --out FILE");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
        (ExportFormat::Vllm, Some(p)) => {
            let written =
                crate::result::vllm::write_levels(p, &run.entry.result, |i| run.level_records(i))
                    .context("writing the vLLM files")?;
            for file in written {
                eprintln!("written to {}", file.display());
            }
        }
        (format, out) => emit(out, &render(&run, format)?)?,
    }
    Ok(ExitCode::SUCCESS)
}
