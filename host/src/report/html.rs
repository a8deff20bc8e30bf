//! A report as one standalone HTML file: inline CSS and inline SVG charts,
//! no script and no link to anything, so it opens offline and can be mailed
//! or archived as it is.
use std::fmt::Write as _;

use super::document::{Document, Section, TextTable};

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
";

/// Text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn table(out: &mut String, t: &TextTable) {
    out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
    for h in &t.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// The document as a complete HTML page.
pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&doc.title),
        escape(&doc.title)
    );
    for s in &doc.sections {
        match s {
            Section::Heading(h) => {
                let _ = writeln!(out, "<h2>{}</h2>", escape(h));
            }
            Section::Paragraph(p) => {
                let _ = writeln!(out, "<p>{}</p>", escape(p));
            }
            Section::Facts(facts) => {
                out.push_str("<dl class=\"facts\">\n");
                for (k, v) in facts {
                    let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
                }
                out.push_str("</dl>\n");
            }
            Section::Table(t) => table(&mut out, t),
            Section::Chart(c) => {
                // plotters writes a complete <svg> element, which HTML5
                // takes inline as it is.
                // The chart draws its own title; the label names it for
                // screen readers.
                let _ = write!(
                    out,
                    "<figure id=\"chart-{}\" aria-label=\"{}\">\n{}\n</figure>\n",
                    escape(&c.slug),
                    escape(&c.title),
                    c.svg
                );
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_report_is_self_contained() {
        let (run, _) = crate::store::tests::sample_run("m<1>", &["a&b"], &[1, 8]);
        let doc = crate::report::document::run_document("id-1", "complete", None, &run).unwrap();
        let html = render(&doc);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("m&lt;1&gt;") && html.contains("a&amp;b"));
        assert!(html.matches("<svg").count() >= 6, "charts inline");
        for external in ["<script", "<link", "src=\"http", "href=\"http", "@import"] {
            assert!(!html.contains(external), "{external}");
        }
    }
}
