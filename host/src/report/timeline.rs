//! The readings beside a run over time: GPU utilisation and power, the server's running and
//! waiting requests and its KV-cache use, each level's start marked, on the run's own time axis
//! (seconds from the first reading of each source).
use plotters::prelude::*;

use super::charts::{self, Chart, ChartError, Curve};
use crate::result::RunResult;

/// Lines over time with the levels' starts marked; `None` when no curve has a point.
fn over_time(
    title: &str,
    y_desc: &str,
    curves: &[Curve],
    levels: &[(f64, String)],
) -> Result<Option<String>, ChartError> {
    let points = || curves.iter().flat_map(|c| c.points.iter());
    let x_max = points().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let y_max = points().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if !x_max.is_finite() || !y_max.is_finite() {
        return Ok(None);
    }
    let e = |x: &dyn std::fmt::Display| charts::err(title, x);
    let y_hi = if y_max > 0.0 { y_max * 1.3 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, charts::SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (charts::FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max.max(1e-3), 0f64..y_hi)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("seconds")
            .y_desc(y_desc)
            .label_style((charts::FONT, 13))
            .draw()
            .map_err(|x| e(&x))?;
        let grey = RGBColor(160, 160, 160);
        for (t, label) in levels {
            chart
                .draw_series(LineSeries::new(
                    [(*t, 0.0), (*t, y_hi)],
                    grey.stroke_width(1),
                ))
                .map_err(|x| e(&x))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (*t, y_hi * 0.97),
                    (charts::FONT, 11).into_font().color(&grey),
                )))
                .map_err(|x| e(&x))?;
        }
        for (i, c) in curves
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.points.is_empty())
        {
            let col = charts::colour(i);
            chart
                .draw_series(LineSeries::new(c.points.clone(), col.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(c.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2))
                });
        }
        charts::legend(&mut chart, SeriesLabelPosition::UpperRight, title)?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(Some(svg))
}

fn marks(run: &RunResult, offsets: &[f64]) -> Vec<(f64, String)> {
    offsets
        .iter()
        .zip(&run.levels)
        .map(|(t, l)| (*t, l.label.clone()))
        .collect()
}

fn push(out: &mut Vec<Chart>, slug: &str, title: &str, svg: Option<String>) {
    if let Some(svg) = svg {
        out.push(Chart {
            slug: slug.to_owned(),
            title: title.to_owned(),
            svg,
        });
    }
}

/// Output tokens per second the client received, in one-second bins on the clock whose level
/// starts are `offsets`: each request's tokens counted when its response ended. Empty without
/// the requests' records.
fn client_tokens_per_s(run: &RunResult, offsets: &[f64]) -> Vec<(f64, f64)> {
    let mut bins: std::collections::BTreeMap<u64, f64> = std::collections::BTreeMap::new();
    for (level, start) in run.levels.iter().zip(offsets) {
        for r in level.requests.iter().flatten() {
            let end = start + r.send_s + r.latency_ms / 1e3;
            *bins.entry(end.max(0.0) as u64).or_default() += f64::from(r.output_tokens);
        }
    }
    let (Some(&first), Some(&last)) = (bins.keys().next(), bins.keys().next_back()) else {
        return Vec::new();
    };
    (first..=last)
        .map(|b| (b as f64 + 0.5, bins.get(&b).copied().unwrap_or(0.0)))
        .collect()
}

/// The run's telemetry charts: none when nothing was read beside it.
pub fn charts(run: &RunResult) -> Result<Vec<Chart>, ChartError> {
    let mut out = Vec::new();
    // The client's throughput on the first reader's clock, beside what it read.
    let clock = run
        .gpu
        .as_ref()
        .map(|g| &g.level_offsets_s)
        .or(run.server_metrics.as_ref().map(|m| &m.level_offsets_s));
    if let Some(offsets) = clock {
        let title = "Client output tokens/s over time";
        let svg = over_time(
            title,
            "tokens/s",
            &[Curve {
                name: "received".into(),
                points: client_tokens_per_s(run, offsets),
            }],
            &marks(run, offsets),
        )?;
        push(&mut out, "client-throughput-time", title, svg);
    }
    if let Some(g) = &run.gpu {
        let levels = marks(run, &g.level_offsets_s);
        let indices: Vec<u32> = {
            let mut v: Vec<u32> = g
                .samples
                .iter()
                .flat_map(|s| s.gpus.iter().map(|r| r.index))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let per_gpu = |f: fn(&crate::gpu::Reading) -> Option<f64>| -> Vec<Curve> {
            indices
                .iter()
                .map(|&i| Curve {
                    name: format!("GPU {i}"),
                    points: g
                        .samples
                        .iter()
                        .filter_map(|s| {
                            let r = s.gpus.iter().find(|r| r.index == i)?;
                            Some((s.t_s, f(r)?))
                        })
                        .collect(),
                })
                .collect()
        };
        let title = "GPU utilisation over time";
        let svg = over_time(
            title,
            "SM busy %",
            &per_gpu(|r| r.sm_utilization_pct.map(f64::from)),
            &levels,
        )?;
        push(&mut out, "gpu-utilisation-time", title, svg);
        let title = "GPU power over time";
        let svg = over_time(title, "W", &per_gpu(|r| r.power_w), &levels)?;
        push(&mut out, "gpu-power-time", title, svg);
    }
    if let Some(m) = &run.server_metrics {
        let levels = marks(run, &m.level_offsets_s);
        let curve = |name: &str, f: fn(&crate::telemetry::server::Scrape) -> Option<f64>| Curve {
            name: name.to_owned(),
            points: m
                .scrapes
                .iter()
                .filter_map(|s| Some((s.t_s, f(s)?)))
                .collect(),
        };
        let title = "Server requests over time";
        let svg = over_time(
            title,
            "requests",
            &[
                curve("running", |s| s.running),
                curve("waiting", |s| s.waiting),
            ],
            &levels,
        )?;
        push(&mut out, "server-requests-time", title, svg);
        let title = "KV-cache use over time";
        let svg = over_time(
            title,
            "% of the KV cache",
            &[curve("KV cache", |s| s.kv_usage.map(|k| k * 100.0))],
            &levels,
        )?;
        push(&mut out, "kv-cache-time", title, svg);
    }
    Ok(out)
}
