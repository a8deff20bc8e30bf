//! What `recommend` found, as reports show it: SLO attainment against concurrency with the
//! target, C* and the bracket marked, as a table, a terminal bar chart and an SVG chart.
//!
//! Probes of the same concurrency are pooled (requests and good requests summed), as the
//! default policy judges them; the attainment shown is that point estimate. The policy's pass or
//! fail may also weigh its confidence, so the column marks the two concurrencies the policy
//! concluded on (C* and the first failing one) as it said, and every other row by its point
//! estimate against the target.
use plotters::prelude::*;

use super::charts::{self, Chart, ChartError};
use super::document::{TextTable, num};
use crate::recommend::Recommendation;

/// One concurrency's pooled probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub concurrency: u32,
    pub requests: u64,
    pub good: u64,
    /// Probes run at this concurrency.
    pub probes: usize,
}

impl Point {
    pub fn attainment_pct(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            100.0 * self.good as f64 / self.requests as f64
        }
    }
}

/// The probes pooled by concurrency, in increasing concurrency.
pub fn points(rec: &Recommendation) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    for p in &rec.probes {
        match out.iter_mut().find(|q| q.concurrency == p.concurrency) {
            Some(q) => {
                q.requests += p.requests;
                q.good += p.good;
                q.probes += 1;
            }
            None => out.push(Point {
                concurrency: p.concurrency,
                requests: p.requests,
                good: p.good,
                probes: 1,
            }),
        }
    }
    out.sort_by_key(|p| p.concurrency);
    out
}

/// What the policy concluded about `p`'s concurrency, or how its point estimate compares.
fn verdict(rec: &Recommendation, p: &Point) -> &'static str {
    let c = p.concurrency;
    if rec.replicas.is_some() && c == rec.per_replica {
        if rec.at_least { "C* (at least)" } else { "C*" }
    } else if rec.first_failing == Some(c) {
        "first failing"
    } else if p.attainment_pct() >= rec.goodput_target_pct {
        "meets"
    } else {
        "misses"
    }
}

/// Attainment per concurrency, with what the policy concluded.
pub fn table(rec: &Recommendation) -> TextTable {
    TextTable {
        header: [
            "concurrency",
            "probes",
            "requests",
            "good",
            "attainment %",
            "policy",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows: points(rec)
            .iter()
            .map(|p| {
                vec![
                    p.concurrency.to_string(),
                    p.probes.to_string(),
                    p.requests.to_string(),
                    p.good.to_string(),
                    format!("{:.1}", p.attainment_pct()),
                    verdict(rec, p).to_string(),
                ]
            })
            .collect(),
    }
}

/// The answer's figures, label → value.
pub fn facts(rec: &Recommendation) -> Vec<(String, String)> {
    let mut f = vec![
        (
            "peak concurrency".to_string(),
            rec.peak_concurrency.to_string(),
        ),
        (
            "target".to_string(),
            format!("{} % SLO attainment", num(rec.goodput_target_pct)),
        ),
        (
            "objectives".to_string(),
            rec.objectives
                .iter()
                .map(|o| format!("{} ≤ {} ms", o.metric.name(), num(o.threshold_ms)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "per replica (C*)".to_string(),
            match (rec.at_least, rec.first_failing) {
                (true, _) => format!("at least {}", rec.per_replica),
                (false, Some(hi)) => {
                    format!("{} (bracket {}–{hi})", rec.per_replica, rec.per_replica)
                }
                (false, None) => rec.per_replica.to_string(),
            },
        ),
    ];
    if let (Some(g), Some((lo, hi))) = (rec.gpus, rec.gpus_range) {
        let gpu = rec.gpu_type.as_deref().unwrap_or("GPU");
        f.push(("GPUs".to_string(), format!("{g} × {gpu} (range {lo}–{hi})")));
    }
    if let Some(from) = &rec.gpu_type_from {
        f.push(("GPU type from".to_string(), from.clone()));
    }
    if let Some(b) = &rec.binding {
        f.push(("binding".to_string(), b.clone()));
    }
    if let Some(r) = &rec.binding_resource {
        f.push(("readings at the first failing".to_string(), r.clone()));
    }
    if let Some(t) = rec.output_tokens_per_s_per_gpu {
        f.push(("output tok/s per GPU at C*".to_string(), num(t)));
    }
    if let Some(c) = &rec.cost {
        f.push((
            "cost".to_string(),
            format!(
                "{}/hour, {} per million output tokens",
                num(c.per_hour),
                c.per_million_output_tokens.map_or("-".into(), num)
            ),
        ));
    }
    if let Some(p) = &rec.policy {
        f.push(("policy".to_string(), p.clone()));
    }
    f.push(("assumes".to_string(), rec.assumption.clone()));
    f
}

/// Attainment against concurrency as terminal bars: each row's bar is its attainment, `|`
/// marks the target on it.
pub fn bars(rec: &Recommendation) -> String {
    const WIDTH: usize = 40;
    let target = rec.goodput_target_pct;
    let at_target = (((target / 100.0) * WIDTH as f64).round() as usize).min(WIDTH - 1);
    let mut out = vec![format!(
        "attainment by concurrency (target {} %, marked |):",
        num(target)
    )];
    for p in points(rec) {
        let filled = ((p.attainment_pct() / 100.0) * WIDTH as f64).round() as usize;
        let bar: String = (0..WIDTH)
            .map(|i| {
                if i == at_target {
                    '|'
                } else if i < filled {
                    '█'
                } else {
                    ' '
                }
            })
            .collect();
        out.push(format!(
            "  c={:<6} {bar} {:>5.1} %  {}",
            p.concurrency,
            p.attainment_pct(),
            verdict(rec, &p)
        ));
    }
    out.join("\n")
}

/// Attainment against concurrency (a log axis: the search doubles), the target as a
/// horizontal line, C* as a vertical one, and the bracket shaded. None without probes.
pub fn chart(rec: &Recommendation) -> Result<Option<Chart>, ChartError> {
    let title = "SLO attainment vs concurrency".to_string();
    let pts = points(rec);
    let Some(max_c) = pts.iter().map(|p| p.concurrency).max() else {
        return Ok(None);
    };
    let x_max = f64::from(max_c.max(2)) * 1.25;
    let target = rec.goodput_target_pct;
    let e = |e: &dyn std::fmt::Display| charts::err(&title, e);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, charts::SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, (charts::FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d((0.8f64..x_max).log_scale(), 0f64..115f64)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("concurrency (clients)")
            .y_desc("% of requests meeting the SLO")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style((charts::FONT, 13))
            .draw()
            .map_err(|x| e(&x))?;
        if let (Some(hi), false) = (rec.first_failing, rec.replicas.is_none()) {
            let (lo, hi) = (f64::from(rec.per_replica), f64::from(hi));
            let shade = charts::colour(2);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(lo, 0.0), (hi, 100.0)],
                    shade.mix(0.18).filled(),
                )))
                .map_err(|x| e(&x))?
                .label(format!("bracket {}–{}", rec.per_replica, hi))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 18, y + 5)], shade.mix(0.3).filled())
                });
        }
        let red = charts::colour(1);
        chart
            .draw_series(LineSeries::new(
                [(0.8, target), (x_max, target)],
                red.stroke_width(1),
            ))
            .map_err(|x| e(&x))?
            .label(format!("target {} %", num(target)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(1)));
        if rec.replicas.is_some() {
            let c_star = f64::from(rec.per_replica);
            let green = charts::colour(2);
            chart
                .draw_series(LineSeries::new(
                    [(c_star, 0.0), (c_star, 100.0)],
                    green.stroke_width(2),
                ))
                .map_err(|x| e(&x))?
                .label(if rec.at_least {
                    format!("C* ≥ {}", rec.per_replica)
                } else {
                    format!("C* = {}", rec.per_replica)
                })
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], green.stroke_width(2))
                });
        }
        let blue = charts::colour(0);
        let line: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (f64::from(p.concurrency), p.attainment_pct()))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), blue.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label("attainment (probes pooled)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2))
            });
        chart
            .draw_series(line.into_iter().map(|p| Circle::new(p, 3, blue.filled())))
            .map_err(|x| e(&x))?;
        charts::legend(&mut chart, SeriesLabelPosition::LowerLeft, &title)?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(Some(Chart {
        slug: "attainment-vs-concurrency".into(),
        title,
        svg,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::answer::ProbeResult;

    fn rec(
        probes: &[(u32, u64, u64)],
        per_replica: u32,
        first_failing: Option<u32>,
    ) -> Recommendation {
        Recommendation {
            peak_concurrency: 500,
            goodput_target_pct: 95.0,
            objectives: crate::metrics::parse_objectives("ttft:500ms").unwrap(),
            per_replica,
            first_failing,
            at_least: first_failing.is_none() && per_replica > 0,
            replicas: (per_replica > 0).then(|| 500u32.div_ceil(per_replica)),
            gpus_per_replica: 1,
            gpus: (per_replica > 0).then(|| 500u32.div_ceil(per_replica)),
            gpus_range: (per_replica > 0).then_some((3, 3)),
            gpu_type: Some("H100".into()),
            gpu_type_from: None,
            binding_resource: None,
            binding: Some("ttft: 3 of 10".into()),
            output_tokens_per_s_per_gpu: Some(4198.0),
            cost: None,
            probes: probes
                .iter()
                .map(|&(concurrency, requests, good)| ProbeResult {
                    concurrency,
                    requests,
                    good,
                    attainment_pct: 0.0,
                    output_tokens_per_s: 0.0,
                })
                .collect(),
            assumption: "even".into(),
            sentence: "s".into(),
            policy: Some("default 0.1.0".into()),
        }
    }

    #[test]
    fn repeated_probes_are_pooled_and_the_conclusion_marked() {
        let r = rec(
            &[
                (1, 74, 74),
                (256, 512, 72),
                (192, 384, 384),
                (244, 100, 70),
                (244, 100, 80),
                (240, 480, 480),
            ],
            240,
            Some(244),
        );
        let p = points(&r);
        let cs: Vec<u32> = p.iter().map(|p| p.concurrency).collect();
        assert_eq!(cs, [1, 192, 240, 244, 256]);
        assert_eq!((p[3].requests, p[3].good, p[3].probes), (200, 150, 2));
        assert_eq!(p[3].attainment_pct(), 75.0);
        let t = table(&r);
        let verdicts: Vec<&str> = t.rows.iter().map(|row| row[5].as_str()).collect();
        assert_eq!(
            verdicts,
            ["meets", "meets", "C*", "first failing", "misses"]
        );
        let text = bars(&r);
        assert!(text.contains("target 95 %"), "{text}");
        let c244 = text.lines().find(|l| l.contains("c=244")).unwrap();
        assert!(c244.contains(" 75.0 %") && c244.contains('|'), "{c244}");
        let svg = chart(&r).unwrap().unwrap().svg;
        for label in ["C* = 240", "bracket 240–244", "target 95 %"] {
            assert!(svg.contains(label), "{label} missing");
        }
    }

    #[test]
    fn none_and_at_least_are_drawn_without_a_false_c_star() {
        let none = rec(&[(1, 74, 10)], 0, Some(1));
        assert_eq!(table(&none).rows[0][5], "first failing");
        let svg = chart(&none).unwrap().unwrap().svg;
        assert!(
            !svg.contains("C* =") && !svg.contains("bracket"),
            "C* drawn for none"
        );
        let at_least = rec(&[(1, 74, 74), (2, 74, 74)], 2, None);
        assert_eq!(table(&at_least).rows[1][5], "C* (at least)");
        assert!(chart(&at_least).unwrap().unwrap().svg.contains("C* ≥ 2"));
        assert!(chart(&rec(&[], 0, None)).unwrap().is_none());
    }
}
