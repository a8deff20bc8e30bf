//! A report as GitHub-flavoured Markdown: the same tables as the HTML
//! report, with each chart as an SVG file beside it.
use std::fmt::Write as _;
use std::path::Path;

use super::document::{Document, Section, TextTable};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn table(out: &mut String, t: &TextTable) {
    let _ = writeln!(
        out,
        "| {} |",
        t.header
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(
        out,
        "|{}|",
        t.header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { " --- " } else { " ---: " })
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &t.rows {
        let _ = writeln!(
            out,
            "| {} |",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    out.push('\n');
}

/// The file a chart is written to, relative to the report.
pub fn chart_file(chart_dir: &str, slug: &str) -> String {
    format!("{chart_dir}/{slug}.svg")
}

/// The document as Markdown. Charts are linked as `chart_dir/SLUG.svg`
/// (relative to the report); with no directory they are left out, with a
/// line saying so.
pub fn render(doc: &Document, chart_dir: Option<&str>) -> String {
    let mut out = format!("# {}\n\n", doc.title);
    let mut said_no_charts = false;
    for s in &doc.sections {
        match s {
            Section::Heading(h) => {
                let _ = writeln!(out, "## {h}\n");
            }
            Section::Paragraph(p) => {
                let _ = writeln!(out, "{p}\n");
            }
            Section::Facts(facts) => {
                for (k, v) in facts {
                    let _ = writeln!(out, "- **{k}**: {}", cell(v));
                }
                out.push('\n');
            }
            Section::Table(t) => table(&mut out, t),
            Section::Chart(c) => match chart_dir {
                Some(dir) => {
                    let _ = writeln!(out, "![{}]({})\n", c.title, chart_file(dir, &c.slug));
                }
                None if !said_no_charts => {
                    said_no_charts = true;
                    out.push_str("(Charts are written as SVG files beside the report with `--out FILE`.)\n\n");
                }
                None => {}
            },
        }
    }
    out
}

/// Write the report to `path` and its charts into `<stem>-charts/` beside
/// it. Returns the chart directory.
pub fn write(doc: &Document, path: &Path) -> std::io::Result<std::path::PathBuf> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_string());
    let dir_name = format!("{stem}-charts");
    let dir = path.with_file_name(&dir_name);
    std::fs::create_dir_all(&dir)?;
    for c in doc.charts() {
        std::fs::write(dir.join(format!("{}.svg", c.slug)), &c.svg)?;
    }
    std::fs::write(path, render(doc, Some(&dir_name)))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_chart_files() {
        let (run, _) = crate::store::tests::sample_run("m", &[], &[1, 8]);
        let doc = crate::report::document::run_document("id-1", "complete", None, &run).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.md");
        let charts = write(&doc, &path).unwrap();
        let md = std::fs::read_to_string(&path).unwrap();
        assert!(md.contains("| level | ok | failed |"), "{md}");
        assert!(md.contains("| c=8 |"));
        let links: Vec<&str> = md.lines().filter(|l| l.starts_with("![")).collect();
        assert!(links.len() >= 6);
        for l in links {
            let file = l.rsplit_once('(').unwrap().1.trim_end_matches(')');
            let svg = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(svg.starts_with("<svg"));
        }
        assert!(charts.ends_with("r-charts"));
        assert!(render(&doc, None).contains("--out FILE"));
    }
}
