//! A report's content, apart from its format: facts, tables, charts and
//! notes in reading order. The HTML and Markdown writers and the terminal
//! view of `compare` all render the same [`Document`].
use super::charts::{self, Chart, ChartError};
use crate::compare::{Comparison, describe_rank_test};
use crate::metrics::Distribution;
use crate::result::RunResult;
use crate::store::StoredRun;

/// A table of text cells.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TextTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", content = "content", rename_all = "kebab-case")]
pub enum Section {
    Heading(String),
    Paragraph(String),
    /// Label → value pairs.
    Facts(Vec<(String, String)>),
    Table(TextTable),
    Chart(Chart),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Document {
    pub title: String,
    pub sections: Vec<Section>,
}

impl Document {
    pub fn charts(&self) -> impl Iterator<Item = &Chart> {
        self.sections.iter().filter_map(|s| match s {
            Section::Chart(c) => Some(c),
            _ => None,
        })
    }
}

/// A figure with as many decimals as its size needs.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "-".to_string()
    } else if a < 0.005 {
        // Never "-0.00".
        "0.00".to_string()
    } else if a >= 100.0 || (v == v.trunc() && a < 1e15) {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Bytes as GiB with one decimal, without the unit.
pub fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1u32 << 30))
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", num(v))
    } else {
        num(v)
    }
}

fn pct(d: &Distribution, q: f64) -> String {
    match (d.count > 0).then(|| d.percentile(q)).flatten() {
        Some(v) => num(v),
        None => "-".to_string(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn run_facts(id: &str, status: &str, note: Option<&str>, run: &RunResult) -> Vec<(String, String)> {
    let s = &run.settings;
    let mut f = vec![
        ("run".to_string(), id.to_string()),
        ("status".to_string(), status.to_string()),
        ("started".to_string(), run.started_at.clone()),
        ("finished".to_string(), run.finished_at.clone()),
        ("server".to_string(), s.server.clone()),
        ("model".to_string(), s.model.clone()),
        (
            "adapter".to_string(),
            format!(
                "{} {} (sha256 {}, {})",
                run.adapter.name,
                run.adapter.version,
                run.adapter.sha256.get(..12).unwrap_or(&run.adapter.sha256),
                run.adapter.source
            ),
        ),
        ("endpoint".to_string(), s.endpoint.clone()),
        ("dataset".to_string(), s.dataset.clone()),
        ("tokenizer".to_string(), s.tokenizer.clone()),
        ("streaming".to_string(), s.stream.to_string()),
        ("metric mode".to_string(), s.metric_mode.name().to_string()),
        (
            "tool".to_string(),
            format!("{} {}", run.tool.name, run.tool.version),
        ),
    ];
    if let Some(p) = &run.slo_policy {
        f.push((
            "SLO policy".to_string(),
            format!("{} {}", p.name, p.version),
        ));
    }
    if !s.tags.is_empty() {
        f.push(("tags".to_string(), s.tags.join(", ")));
    }
    if let Some(n) = note {
        f.push(("note".to_string(), n.to_string()));
    }
    f
}

/// Throughput, goodput and counts per level.
pub fn throughput_table(run: &RunResult) -> TextTable {
    let has_slo = run.levels.iter().any(|l| l.summary.goodput.is_some());
    let mut header = strings(&[
        "level",
        "ok",
        "failed",
        "duration s",
        "req/s",
        "out tok/s",
        "total tok/s",
        "peak in flight",
    ]);
    if has_slo {
        header.extend(strings(&["goodput req/s", "attainment %"]));
    }
    let rows = run
        .levels
        .iter()
        .map(|l| {
            let s = &l.summary;
            let mut row = vec![
                if l.interrupted {
                    format!("{} (interrupted)", l.label)
                } else {
                    l.label.clone()
                },
                s.completed.to_string(),
                s.failed.to_string(),
                num(s.duration_s),
                num(s.request_throughput),
                num(s.output_throughput),
                num(s.total_token_throughput),
                s.peak_concurrency.to_string(),
            ];
            if has_slo {
                match &s.goodput {
                    Some(g) => row.extend([num(g.goodput_rps), num(g.attainment_pct)]),
                    None => row.extend(["-".to_string(), "-".to_string()]),
                }
            }
            row
        })
        .collect();
    TextTable { header, rows }
}

/// Latency percentiles per level, in ms.
pub fn latency_table(run: &RunResult) -> TextTable {
    let header = strings(&[
        "level",
        "TTFT p50",
        "TTFT p90",
        "TTFT p99",
        "TPOT p50",
        "TPOT p99",
        "ITL p50",
        "ITL p99",
        "E2EL p50",
        "E2EL p99",
        "queue p99",
    ]);
    let rows = run
        .levels
        .iter()
        .map(|l| {
            let s = &l.summary;
            vec![
                l.label.clone(),
                pct(&s.ttft_ms, 50.0),
                pct(&s.ttft_ms, 90.0),
                pct(&s.ttft_ms, 99.0),
                pct(&s.tpot_ms, 50.0),
                pct(&s.tpot_ms, 99.0),
                pct(&s.itl_ms, 50.0),
                pct(&s.itl_ms, 99.0),
                pct(&s.e2el_ms, 50.0),
                pct(&s.e2el_ms, 99.0),
                pct(&s.queue_ms, 99.0),
            ]
        })
        .collect();
    TextTable { header, rows }
}

/// Errors by level and class, with the first messages seen.
pub fn error_table(run: &RunResult) -> Option<TextTable> {
    let rows: Vec<Vec<String>> = run
        .levels
        .iter()
        .flat_map(|l| {
            l.summary.errors.iter().map(|(class, e)| {
                vec![
                    l.label.clone(),
                    class.to_string(),
                    e.count.to_string(),
                    e.first_messages.join(" | "),
                ]
            })
        })
        .collect();
    (!rows.is_empty()).then(|| TextTable {
        header: strings(&["level", "class", "count", "first messages"]),
        rows,
    })
}

fn slo_table(run: &RunResult) -> Option<TextTable> {
    let rows: Vec<Vec<String>> = run
        .levels
        .iter()
        .filter_map(|l| {
            let g = l.summary.goodput.as_ref()?;
            let objectives: Vec<String> = g
                .objectives
                .iter()
                .map(|o| format!("{} ≤ {} ms", o.metric.name(), num(o.threshold_ms)))
                .collect();
            let missed: Vec<String> = g
                .violations
                .iter()
                .map(|(m, n)| format!("{m}: {n}"))
                .collect();
            Some(vec![
                l.label.clone(),
                objectives.join(", "),
                g.good.to_string(),
                num(g.attainment_pct),
                missed.join(", "),
            ])
        })
        .collect();
    (!rows.is_empty()).then(|| TextTable {
        header: strings(&["level", "objectives", "good", "attainment %", "missed"]),
        rows,
    })
}

/// The report of one run.
pub fn run_document(
    id: &str,
    status: &str,
    note: Option<&str>,
    run: &RunResult,
) -> Result<Document, ChartError> {
    let mut sections = vec![Section::Facts(run_facts(id, status, note, run))];
    if let Some(rec) = &run.recommendation {
        sections.push(Section::Heading("Recommendation".into()));
        sections.push(Section::Paragraph(rec.sentence.clone()));
        sections.push(Section::Facts(super::capacity::facts(rec)));
        sections.push(Section::Table(super::capacity::table(rec)));
        if let Some(chart) = super::capacity::chart(rec)? {
            sections.push(Section::Chart(chart));
        }
    }
    sections.extend([
        Section::Heading("Throughput".into()),
        Section::Table(throughput_table(run)),
        Section::Heading("Latency (ms)".into()),
        Section::Table(latency_table(run)),
    ]);
    if let Some(t) = slo_table(run) {
        sections.push(Section::Heading("Service-level objectives".into()));
        sections.push(Section::Table(t));
    }
    if let Some(t) = super::readings::table(run) {
        sections.push(Section::Heading("GPUs (sampled on this machine)".into()));
        sections.push(Section::Table(t));
    }
    sections.push(Section::Heading("Errors".into()));
    match error_table(run) {
        Some(t) => sections.push(Section::Table(t)),
        None => sections.push(Section::Paragraph("No request failed.".into())),
    }
    let notes = super::table::notes(run);
    if !notes.is_empty() {
        sections.push(Section::Heading("Notes".into()));
        sections.extend(notes.into_iter().map(Section::Paragraph));
    }
    let charts = charts::run_charts(run)?;
    if !charts.is_empty() {
        sections.push(Section::Heading("Charts".into()));
        sections.extend(charts.into_iter().map(Section::Chart));
    }
    let telemetry = super::timeline::charts(run)?;
    if !telemetry.is_empty() {
        sections.push(Section::Heading("GPUs and server over time".into()));
        sections.extend(telemetry.into_iter().map(Section::Chart));
    }
    Ok(Document {
        title: format!("llm-loadtest run {id}"),
        sections,
    })
}

/// The report of a comparison; `runs` in the comparison's order.
pub fn comparison_document(cmp: &Comparison, runs: &[StoredRun]) -> Result<Document, ChartError> {
    let mut sections = Vec::new();
    let overview = TextTable {
        header: strings(&[
            "", "run", "started", "status", "model", "server", "adapter", "tags",
        ]),
        rows: runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let res = &r.entry.result;
                vec![
                    if i == 0 {
                        "baseline".to_string()
                    } else {
                        format!("#{}", i + 1)
                    },
                    r.entry.id.clone(),
                    res.started_at.clone(),
                    r.entry.status.name().to_string(),
                    res.settings.model.clone(),
                    res.settings.server.clone(),
                    format!("{} {}", res.adapter.name, res.adapter.version),
                    res.settings.tags.join(", "),
                ]
            })
            .collect(),
    };
    sections.push(Section::Table(overview));
    if !cmp.workload_differences.is_empty() {
        sections.push(Section::Heading("Workloads differ".into()));
        sections.push(Section::Paragraph(
            "These runs did not send the same workload, so their differences below are not \
             the server's alone:"
                .into(),
        ));
        sections.extend(
            cmp.workload_differences
                .iter()
                .cloned()
                .map(Section::Paragraph),
        );
    }
    sections.push(Section::Paragraph(format!(
        "Differences are later run minus baseline. A {:.0} % bootstrap interval of the \
         difference that covers 0 reads \"within noise\"; Mann-Whitney U tests whether one \
         run's per-request latencies are larger (P(slower): the chance a request of the \
         later run is slower than one of the baseline).",
        crate::compare::CONFIDENCE * 100.0
    )));
    for level in &cmp.levels {
        sections.push(Section::Heading(format!("Level {}", level.label)));
        let mut header = vec!["figure".to_string(), cmp.ids[0].clone()];
        for id in &cmp.ids[1..] {
            header.extend([
                id.clone(),
                "Δ".to_string(),
                "Δ %".to_string(),
                "95 % CI of Δ".to_string(),
                "verdict".to_string(),
            ]);
        }
        let rows = level
            .rows
            .iter()
            .map(|row| {
                let cell = |i: usize| row.values[i].map_or("-".to_string(), num);
                let mut out = vec![row.name.clone(), cell(0)];
                for i in 1..cmp.ids.len() {
                    let delta = match (row.values[0], row.values[i]) {
                        (Some(a), Some(b)) => signed(b - a),
                        _ => "-".to_string(),
                    };
                    out.extend([
                        cell(i),
                        delta,
                        row.delta_pct(i)
                            .map_or("-".to_string(), |p| format!("{} %", signed(p))),
                        row.intervals[i].map_or(String::new(), |iv| {
                            format!("[{}, {}]", signed(iv.lo), signed(iv.hi))
                        }),
                        row.verdict(i),
                    ]);
                }
                out
            })
            .collect();
        sections.push(Section::Table(TextTable { header, rows }));
        for i in 1..cmp.ids.len() {
            let lines: Vec<String> = level
                .rank_tests
                .iter()
                .filter_map(|t| t.tests[i].map(|mw| describe_rank_test(t.metric, &mw)))
                .collect();
            if lines.is_empty() {
                let why = match (level.sources[0], level.sources[i]) {
                    (
                        crate::compare::SampleSource::Records,
                        crate::compare::SampleSource::Records,
                    ) => "too few requests",
                    _ => "per-request records are missing; intervals use the stored histograms",
                };
                sections.push(Section::Paragraph(format!(
                    "{} vs {}: no rank test ({why}).",
                    cmp.ids[i], cmp.ids[0]
                )));
            } else {
                sections.push(Section::Paragraph(format!(
                    "{} vs {}: {}.",
                    cmp.ids[i],
                    cmp.ids[0],
                    lines.join("; ")
                )));
            }
        }
    }
    let named: Vec<(String, &RunResult)> = runs
        .iter()
        .map(|r| (r.entry.id.clone(), &r.entry.result))
        .collect();
    let charts = charts::comparison_charts(&named)?;
    if !charts.is_empty() {
        sections.push(Section::Heading("Charts".into()));
        sections.extend(charts.into_iter().map(Section::Chart));
    }
    let with_records: Vec<RunResult> = runs.iter().map(StoredRun::result_with_records).collect();
    let named: Vec<(String, &RunResult)> = runs
        .iter()
        .zip(&with_records)
        .map(|(r, res)| (r.entry.id.clone(), res))
        .collect();
    let over_time = super::timeline::overlay(&named)?;
    if !over_time.is_empty() {
        sections.push(Section::Heading("GPUs and server over time".into()));
        sections.push(Section::Paragraph(
            "Each run on its own clock: seconds from its first GPU sample or metrics scrape."
                .into(),
        ));
        sections.extend(over_time.into_iter().map(Section::Chart));
    }
    Ok(Document {
        title: format!("llm-loadtest comparison: {}", cmp.ids.join(" vs ")),
        sections,
    })
}
