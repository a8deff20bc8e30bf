//! `llm-loadtest compare ID ID [ID…]`: runs side by side per level, the
//! first as baseline, with deltas and significance tests (see
//! [`crate::compare`]).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::report::document::{self, Document, Section};
use crate::report::{html, markdown};
use crate::store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Tables in the terminal.
    Text,
    /// Markdown, charts as SVG files beside it (with --out).
    Md,
    /// One standalone HTML page with charts.
    Html,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Two or more run IDs (or unique prefixes); the first is the baseline.
    #[arg(num_args = 2.., required = true)]
    pub ids: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: CompareFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub remote: crate::remote::RemoteFlag,
}

/// The document for a terminal: tables drawn, charts left out.
pub fn text(doc: &Document) -> String {
    let mut out = format!("{}\n", doc.title);
    for s in &doc.sections {
        match s {
            Section::Heading(h) => out.push_str(&format!("\n{h}\n")),
            Section::Paragraph(p) => out.push_str(&format!("{p}\n")),
            Section::Facts(f) => {
                for (k, v) in f {
                    out.push_str(&format!("  {k}: {v}\n"));
                }
            }
            Section::Table(t) => {
                let mut table = Table::new();
                table
                    .load_preset(UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header(t.header.clone());
                for row in &t.rows {
                    table.add_row(row.iter().enumerate().map(|(i, c)| {
                        let cell = Cell::new(c);
                        if i == 0 {
                            cell
                        } else {
                            cell.set_alignment(CellAlignment::Right)
                        }
                    }));
                }
                out.push_str(&format!("{table}\n"));
            }
            Section::Chart(_) => {}
        }
    }
    out
}

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    if let Some(remote) = args.remote.chosen()? {
        let format = match args.format {
            CompareFormat::Text => "text",
            CompareFormat::Md => "md",
            CompareFormat::Html => "html",
        };
        let body = serde_json::json!({ "ids": args.ids, "format": format });
        let text = crate::remote::block_on(remote.text(
            http::Method::POST,
            "/api/v1/benchmark/compare",
            Some(&body),
        ))??;
        if args.format == CompareFormat::Md && args.out.is_some() {
            eprintln!("note: from a server, Markdown comes without its chart files");
        }
        super::export::emit(args.out.as_deref(), &text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    let st = store::open(&dir)?;
    let runs = args
        .ids
        .iter()
        .map(|id| store::load(&st, id))
        .collect::<Result<Vec<_>, _>>()?;
    drop(st);
    let cmp = crate::compare::compare(&runs);
    let doc = document::comparison_document(&cmp, &runs)?;
    let write = |text: String| -> anyhow::Result<()> {
        match &args.out {
            Some(p) => {
                std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
                eprintln!("written to {}", p.display());
            }
            None => print!("{text}"),
        }
        Ok(())
    };
    match args.format {
        CompareFormat::Text => write(text(&doc))?,
        CompareFormat::Html => write(html::render(&doc))?,
        CompareFormat::Md => match &args.out {
            Some(p) => super::export::write_markdown(&doc, p)?,
            None => print!("{}", markdown::render(&doc, None)),
        },
    }
    Ok(ExitCode::SUCCESS)
}
