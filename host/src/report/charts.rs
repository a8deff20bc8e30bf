//! Report charts as SVG, drawn by plotters' SVG backend.
//!
//! plotters is built without its font features: text goes out as SVG
//! `<text>` elements that the viewer renders, so no font file is read and
//! the charts are the same on every machine.
use hdrhistogram::Histogram;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::metrics::histogram::LevelHistograms;
use crate::metrics::{Distribution, LevelSummary};
use crate::result::RunResult;

pub(super) const SIZE: (u32, u32) = (760, 380);
pub(super) const FONT: &str = "sans-serif";

/// Line colours, told apart in colour and in grey.
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];

#[derive(Debug, thiserror::Error)]
#[error("chart `{title}` could not be drawn: {reason}")]
pub struct ChartError {
    pub title: String,
    pub reason: String,
}

/// A drawn chart: `slug` names its file beside a Markdown report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Chart {
    pub slug: String,
    pub title: String,
    pub svg: String,
}

/// One line over the levels; None where a level has no value.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// One curve of (x, y) points.
#[derive(Debug, Clone)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

pub(super) fn err(title: &str, e: impl std::fmt::Display) -> ChartError {
    ChartError {
        title: title.to_string(),
        reason: e.to_string(),
    }
}

pub(super) fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// The legend every chart draws, at `position`.
pub(super) fn legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
    title: &str,
) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 13))
        .draw()
        .map_err(|e| err(title, e))
}

/// The top of a value axis: headroom above the data for the legend.
fn upper(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.3
    } else {
        1.0
    }
}

/// Lines over the levels (a categorical x axis). None when no series has
/// a value.
pub fn by_level(
    title: &str,
    y_desc: &str,
    levels: &[String],
    series: &[Series],
) -> Result<Option<String>, ChartError> {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if levels.is_empty() || !max.is_finite() {
        return Ok(None);
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(title, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            // An integer range's end is one of its values: 0..n-1 is n segments.
            .build_cartesian_2d((0..levels.len() - 1).into_segmented(), 0f64..upper(max))
            .map_err(|e| err(title, e))?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => levels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .x_labels(levels.len())
            .x_label_formatter(&label)
            .light_line_style(WHITE)
            .x_desc("level")
            .y_desc(y_desc)
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| err(title, e))?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            let points: Vec<(SegmentValue<usize>, f64)> = s
                .values
                .iter()
                .enumerate()
                .filter_map(|(x, v)| v.map(|v| (SegmentValue::CenterOf(x), v)))
                .collect();
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
                .map_err(|e| err(title, e))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled())))
                .map_err(|e| err(title, e))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, title)?;
        root.present().map_err(|e| err(title, e))?;
    }
    Ok(Some(svg))
}

/// Cumulative distribution curves. The x axis stops at the largest p99.9
/// of the curves, so one long tail does not flatten the rest. None when no
/// curve has points.
pub fn cdf(title: &str, x_desc: &str, curves: &[Curve]) -> Result<Option<String>, ChartError> {
    let x_max = curves
        .iter()
        .filter_map(|c| {
            c.points
                .iter()
                .find(|(_, y)| *y >= 0.999)
                .or(c.points.last())
                .map(|p| p.0)
        })
        .fold(f64::NEG_INFINITY, f64::max);
    let x_min = curves
        .iter()
        .filter_map(|c| c.points.first().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    if !x_max.is_finite() || !x_min.is_finite() {
        return Ok(None);
    }
    // Start a little left of the fastest value rather than at 0, where a
    // narrow distribution would be squeezed against the right edge.
    let span = (x_max - x_min).max(x_max.abs() * 0.02).max(1e-3);
    let x_lo = (x_min - 0.1 * span).max(0.0);
    let x_hi = x_max + 0.05 * span;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(title, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x_lo..x_hi, 0f64..1.0)
            .map_err(|e| err(title, e))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(x_desc)
            .y_desc("share of requests")
            .y_label_formatter(&|y| format!("{:.0} %", y * 100.0))
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| err(title, e))?;
        for (i, c) in curves.iter().enumerate() {
            if c.points.is_empty() {
                continue;
            }
            let col = colour(i);
            chart
                .draw_series(LineSeries::new(c.points.clone(), col.stroke_width(2)))
                .map_err(|e| err(title, e))?
                .label(c.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, title)?;
        root.present().map_err(|e| err(title, e))?;
    }
    Ok(Some(svg))
}

/// (latency ms, share of values at or below it) for each recorded bucket,
/// starting from (first value, 0) so the curve rises from the axis.
pub fn cdf_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = h.len();
    if total == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut seen = 0u64;
    for it in h.iter_recorded() {
        let ms = h.highest_equivalent(it.value_iterated_to()) as f64 / 1e3;
        if out.is_empty() {
            out.push((
                h.lowest_equivalent(it.value_iterated_to()) as f64 / 1e3,
                0.0,
            ));
        }
        seen += it.count_at_value();
        out.push((ms, seen as f64 / total as f64));
    }
    out
}

/// Which latency a chart shows.
#[derive(Debug, Clone, Copy)]
enum Latency {
    Ttft,
    Tpot,
    Itl,
    E2el,
}

impl Latency {
    const ALL: [Latency; 4] = [Latency::Ttft, Latency::Tpot, Latency::Itl, Latency::E2el];

    fn name(self) -> &'static str {
        match self {
            Latency::Ttft => "TTFT",
            Latency::Tpot => "TPOT",
            Latency::Itl => "ITL",
            Latency::E2el => "E2EL",
        }
    }

    fn of(self, s: &LevelSummary) -> &Distribution {
        match self {
            Latency::Ttft => &s.ttft_ms,
            Latency::Tpot => &s.tpot_ms,
            Latency::Itl => &s.itl_ms,
            Latency::E2el => &s.e2el_ms,
        }
    }

    fn histogram(self, h: &LevelHistograms) -> &Histogram<u64> {
        match self {
            Latency::Ttft => &h.ttft,
            Latency::Tpot => &h.tpot,
            Latency::Itl => &h.itl,
            Latency::E2el => &h.e2el,
        }
    }
}

fn push(out: &mut Vec<Chart>, slug: String, title: String, svg: Option<String>) {
    if let Some(svg) = svg {
        out.push(Chart { slug, title, svg });
    }
}

fn labels(run: &RunResult) -> Vec<String> {
    run.levels.iter().map(|l| l.label.clone()).collect()
}

fn dist_value(d: &Distribution, q: f64) -> Option<f64> {
    (d.count > 0).then(|| d.percentile(q)).flatten()
}

/// The charts of one run: latency percentiles, throughput, goodput and
/// attainment per level, and TTFT and ITL distributions.
pub fn run_charts(run: &RunResult) -> Result<Vec<Chart>, ChartError> {
    let levels = labels(run);
    let mut out = Vec::new();
    for m in Latency::ALL {
        let series: Vec<Series> = [(50.0, "p50"), (90.0, "p90"), (99.0, "p99")]
            .into_iter()
            .map(|(q, name)| Series {
                name: name.to_string(),
                values: run
                    .levels
                    .iter()
                    .map(|l| dist_value(m.of(&l.summary), q))
                    .collect(),
            })
            .collect();
        let title = format!("{} percentiles by level", m.name());
        let svg = by_level(&title, "ms", &levels, &series)?;
        push(
            &mut out,
            format!("{}-percentiles", m.name().to_lowercase()),
            title,
            svg,
        );
    }
    let per_level = |f: &dyn Fn(&LevelSummary) -> Option<f64>| -> Vec<Option<f64>> {
        run.levels.iter().map(|l| f(&l.summary)).collect()
    };
    let title = "Token throughput by level".to_string();
    let svg = by_level(
        &title,
        "tokens/s",
        &levels,
        &[
            Series {
                name: "output tok/s".into(),
                values: per_level(&|s| Some(s.output_throughput)),
            },
            Series {
                name: "total tok/s".into(),
                values: per_level(&|s| Some(s.total_token_throughput)),
            },
        ],
    )?;
    push(&mut out, "token-throughput".into(), title, svg);
    let has_slo = run.levels.iter().any(|l| l.summary.goodput.is_some());
    let mut req = vec![Series {
        name: "requests/s".into(),
        values: per_level(&|s| Some(s.request_throughput)),
    }];
    if has_slo {
        req.push(Series {
            name: "goodput req/s".into(),
            values: per_level(&|s| s.goodput.as_ref().map(|g| g.goodput_rps)),
        });
    }
    let title = if has_slo {
        "Request throughput and goodput by level"
    } else {
        "Request throughput by level"
    }
    .to_string();
    let svg = by_level(&title, "requests/s", &levels, &req)?;
    push(&mut out, "request-throughput".into(), title, svg);
    if has_slo {
        let title = "SLO attainment by level".to_string();
        let svg = by_level(
            &title,
            "% of requests",
            &levels,
            &[Series {
                name: "attainment %".into(),
                values: per_level(&|s| s.goodput.as_ref().map(|g| g.attainment_pct)),
            }],
        )?;
        push(&mut out, "attainment".into(), title, svg);
    }
    for m in [Latency::Ttft, Latency::Itl] {
        let curves: Vec<Curve> = run
            .levels
            .iter()
            .filter_map(|l| {
                let h = LevelHistograms::deserialize(&l.histograms).ok()?;
                Some(Curve {
                    name: l.label.clone(),
                    points: cdf_points(m.histogram(&h)),
                })
            })
            .collect();
        let title = format!("{} distribution (CDF) per level", m.name());
        let svg = cdf(&title, "ms", &curves)?;
        push(
            &mut out,
            format!("{}-cdf", m.name().to_lowercase()),
            title,
            svg,
        );
    }
    Ok(out)
}

/// The charts of a comparison: one line per run over the union of levels,
/// and per shared level the TTFT distributions of every run.
pub fn comparison_charts(runs: &[(String, &RunResult)]) -> Result<Vec<Chart>, ChartError> {
    let mut levels: Vec<String> = Vec::new();
    for (_, r) in runs {
        for l in &r.levels {
            if !levels.contains(&l.label) {
                levels.push(l.label.clone());
            }
        }
    }
    let series = |f: &dyn Fn(&LevelSummary) -> Option<f64>| -> Vec<Series> {
        runs.iter()
            .map(|(name, r)| Series {
                name: name.clone(),
                values: levels
                    .iter()
                    .map(|label| {
                        r.levels
                            .iter()
                            .find(|l| &l.label == label)
                            .and_then(|l| f(&l.summary))
                    })
                    .collect(),
            })
            .collect()
    };
    let mut out = Vec::new();
    for (m, q, qn) in [
        (Latency::Ttft, 50.0, "p50"),
        (Latency::Ttft, 99.0, "p99"),
        (Latency::Tpot, 50.0, "p50"),
        (Latency::E2el, 99.0, "p99"),
    ] {
        let title = format!("{} {qn} by level", m.name());
        let svg = by_level(&title, "ms", &levels, &series(&|s| dist_value(m.of(s), q)))?;
        push(
            &mut out,
            format!("{}-{qn}", m.name().to_lowercase()),
            title,
            svg,
        );
    }
    let title = "Output throughput by level".to_string();
    let svg = by_level(
        &title,
        "tokens/s",
        &levels,
        &series(&|s| Some(s.output_throughput)),
    )?;
    push(&mut out, "output-throughput".into(), title, svg);
    if runs
        .iter()
        .any(|(_, r)| r.levels.iter().any(|l| l.summary.goodput.is_some()))
    {
        let title = "SLO attainment by level".to_string();
        let svg = by_level(
            &title,
            "% of requests",
            &levels,
            &series(&|s| s.goodput.as_ref().map(|g| g.attainment_pct)),
        )?;
        push(&mut out, "attainment".into(), title, svg);
    }
    for (li, label) in levels.iter().enumerate() {
        let curves: Vec<Curve> = runs
            .iter()
            .filter_map(|(name, r)| {
                let l = r.levels.iter().find(|l| &l.label == label)?;
                let h = LevelHistograms::deserialize(&l.histograms).ok()?;
                Some(Curve {
                    name: name.clone(),
                    points: cdf_points(&h.ttft),
                })
            })
            .collect();
        if curves.len() < 2 {
            continue;
        }
        let title = format!("TTFT distribution (CDF) at {label}");
        let svg = cdf(&title, "ms", &curves)?;
        push(&mut out, format!("ttft-cdf-{li}"), title, svg);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_gives_svg_charts_without_fonts() {
        let (run, _) = crate::store::tests::sample_run("m", &[], &[1, 4, 16]);
        let charts = run_charts(&run).unwrap();
        let slugs: Vec<&str> = charts.iter().map(|c| c.slug.as_str()).collect();
        for want in [
            "ttft-percentiles",
            "token-throughput",
            "ttft-cdf",
            "itl-cdf",
        ] {
            assert!(slugs.contains(&want), "{slugs:?}");
        }
        for c in &charts {
            assert!(c.svg.starts_with("<svg"), "{}", &c.svg[..40]);
            assert!(
                c.svg.contains("<polyline") || c.svg.contains("<path"),
                "{}",
                c.slug
            );
            assert!(
                c.svg.contains("c=16"),
                "{}: level labels on the axis or legend",
                c.slug
            );
        }
        // No data: no chart rather than an empty frame.
        assert!(by_level("t", "ms", &["a".into()], &[]).unwrap().is_none());
        assert!(cdf("t", "ms", &[]).unwrap().is_none());
    }

    #[test]
    fn cdf_points_rise_to_one() {
        let mut h = LevelHistograms::default();
        for v in [10.0, 20.0, 20.0, 40.0] {
            h.record(&crate::metrics::RequestRecord {
                ttft_ms: Some(v),
                ..Default::default()
            });
        }
        let p = cdf_points(&h.ttft);
        assert_eq!(p.first().unwrap().1, 0.0);
        assert_eq!(p.last().unwrap().1, 1.0);
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let half = p.iter().find(|(x, _)| (*x - 20.0).abs() < 0.05).unwrap();
        assert_eq!(half.1, 0.75);
    }
}
