//! The readings beside a run over time: the client's throughput and TTFT, GPU utilisation,
//! memory and power, the server's running and waiting requests and its KV-cache use, each
//! level's start marked, on the run's own time axis (seconds from the first reading of each
//! source); and a staged run's own series (planned load, in flight, output rate, TTFT), on the
//! stages' axis. [`series`] gathers the curves once; the reports draw them as SVG, `compare` lays
//! the runs over each other, and `show` prints them as terminal sparklines.
use plotters::prelude::*;

use super::charts::{self, Chart, ChartError, Curve};
use crate::result::RunResult;

/// One chart's worth of curves over seconds, with the levels' starts.
pub struct Series {
    pub slug: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub curves: Vec<Curve>,
    pub levels: Vec<(f64, String)>,
}

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

/// Per one-second bin on the clock whose level starts are `offsets`, what `fold` makes of the
/// values `at` gives each measured request (`(seconds into its level, value)`). Empty without
/// the requests' records.
fn binned(
    run: &RunResult,
    offsets: &[f64],
    at: fn(&crate::metrics::RequestRecord) -> Option<(f64, f64)>,
    fold: fn(&mut [f64]) -> f64,
    fill_gaps: bool,
) -> Vec<(f64, f64)> {
    let mut bins: std::collections::BTreeMap<u64, Vec<f64>> = std::collections::BTreeMap::new();
    for (level, start) in run.levels.iter().zip(offsets) {
        for r in level.requests.iter().flatten().filter(|r| !r.warmup) {
            if let Some((t, v)) = at(r) {
                bins.entry((start + t).max(0.0) as u64).or_default().push(v);
            }
        }
    }
    let (Some(&first), Some(&last)) = (bins.keys().next(), bins.keys().next_back()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for b in first..=last {
        match bins.get_mut(&b) {
            Some(v) => out.push((b as f64 + 0.5, fold(v))),
            None if fill_gaps => out.push((b as f64 + 0.5, 0.0)),
            None => {}
        }
    }
    out
}

fn sum(v: &mut [f64]) -> f64 {
    v.iter().sum()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The run's curves over time: none when nothing was read beside it (the time axis is a
/// reader's clock).
pub fn series(run: &RunResult) -> Vec<Series> {
    let mut out = Vec::new();
    if let Some(staged) = &run.load_series {
        out.extend(stage_series(run, staged));
    }
    let clock = run
        .gpu
        .as_ref()
        .map(|g| &g.level_offsets_s)
        .or(run.server_metrics.as_ref().map(|m| &m.level_offsets_s));
    if let Some(offsets) = clock {
        let levels = marks(run, offsets);
        // Each request's tokens counted when its response ended.
        let tokens = binned(
            run,
            offsets,
            |r| Some((r.send_s + r.latency_ms / 1e3, f64::from(r.output_tokens))),
            sum,
            true,
        );
        out.push(Series {
            slug: "client-throughput-time",
            title: "Client output tokens/s over time",
            unit: "tokens/s",
            curves: vec![Curve {
                name: "received".into(),
                points: tokens,
            }],
            levels: levels.clone(),
        });
        // Each request's TTFT placed when its first token came.
        let ttft = binned(
            run,
            offsets,
            |r| r.ttft_ms.map(|t| (r.send_s + t / 1e3, t)),
            median,
            false,
        );
        out.push(Series {
            slug: "client-ttft-time",
            title: "Client TTFT over time",
            unit: "ms (median per second)",
            curves: vec![Curve {
                name: "TTFT".into(),
                points: ttft,
            }],
            levels,
        });
    }
    if let Some(g) = &run.gpu {
        let levels = marks(run, &g.level_offsets_s);
        let mut indices: Vec<u32> = g
            .samples
            .iter()
            .flat_map(|s| s.gpus.iter().map(|r| r.index))
            .collect();
        indices.sort_unstable();
        indices.dedup();
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
        out.extend([
            Series {
                slug: "gpu-utilisation-time",
                title: "GPU utilisation over time",
                unit: "SM busy %",
                curves: per_gpu(|r| r.sm_utilization_pct.map(f64::from)),
                levels: levels.clone(),
            },
            Series {
                slug: "gpu-memory-time",
                title: "GPU memory over time",
                unit: "GiB used",
                curves: per_gpu(|r| r.memory_used_bytes.map(|b| b as f64 / (1u64 << 30) as f64)),
                levels: levels.clone(),
            },
            Series {
                slug: "gpu-power-time",
                title: "GPU power over time",
                unit: "W",
                curves: per_gpu(|r| r.power_w),
                levels,
            },
        ]);
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
        out.extend([
            Series {
                slug: "server-requests-time",
                title: "Server requests over time",
                unit: "requests",
                curves: vec![
                    curve("running", |s| s.running),
                    curve("waiting", |s| s.waiting),
                ],
                levels: levels.clone(),
            },
            Series {
                slug: "kv-cache-time",
                title: "KV-cache use over time",
                unit: "% of the KV cache",
                curves: vec![curve("KV cache", |s| s.kv_usage.map(|k| k * 100.0))],
                levels,
            },
        ]);
    }
    out.retain(|s| s.curves.iter().any(|c| !c.points.is_empty()));
    out
}

/// A staged run's own series (`load_series`): planned load beside what was in flight or sent,
/// the output rate, and TTFT, with each stage's start marked.
fn stage_series(run: &RunResult, staged: &crate::metrics::LoadSeries) -> Vec<Series> {
    let levels: Vec<(f64, String)> = staged
        .stage_starts_s
        .iter()
        .zip(&run.levels)
        .map(|(t, l)| (*t, l.label.clone()))
        .collect();
    let mid = staged.interval_s / 2.0;
    let curve = |name: &str, f: fn(&crate::metrics::SeriesPoint) -> Option<f64>| Curve {
        name: name.to_owned(),
        points: staged
            .points
            .iter()
            .filter_map(|p| Some((p.t_s + mid, f(p)?)))
            .collect(),
    };
    let load = match staged.unit {
        crate::plan::StageUnit::Clients => Series {
            slug: "stages-load-time",
            title: "Clients and requests in flight over time",
            unit: "clients / requests",
            curves: vec![
                curve("planned clients", |p| Some(p.target)),
                curve("in flight", |p| Some(p.in_flight)),
            ],
            levels: levels.clone(),
        },
        crate::plan::StageUnit::Rate => Series {
            slug: "stages-load-time",
            title: "Arrival rate over time",
            unit: "requests/s",
            curves: vec![
                curve("planned", |p| Some(p.target)),
                curve("sent", |p| Some(p.sent_per_s)),
                curve("completed", |p| Some(p.completed_per_s)),
            ],
            levels: levels.clone(),
        },
    };
    vec![
        load,
        Series {
            slug: "stages-throughput-time",
            title: "Output tokens/s over time",
            unit: "tokens/s",
            curves: vec![curve("output", |p| Some(p.output_tokens_per_s))],
            levels: levels.clone(),
        },
        Series {
            slug: "stages-ttft-time",
            title: "TTFT over time",
            unit: "ms",
            curves: vec![
                curve("p50", |p| p.ttft_p50_ms),
                curve("p99", |p| p.ttft_p99_ms),
            ],
            levels,
        },
    ]
}

fn draw(s: &Series) -> Result<Option<Chart>, ChartError> {
    Ok(
        over_time(s.title, s.unit, &s.curves, &s.levels)?.map(|svg| Chart {
            slug: s.slug.to_owned(),
            title: s.title.to_owned(),
            svg,
        }),
    )
}

/// The run's telemetry charts: none when nothing was read beside it.
pub fn charts(run: &RunResult) -> Result<Vec<Chart>, ChartError> {
    series(run)
        .iter()
        .filter_map(|s| draw(s).transpose())
        .collect()
}

/// Several runs over each other, one chart per kind of curve any of them has, each run on its
/// own clock (seconds from its first reading), named by `runs`' labels. Level marks are left
/// out: each run has its own.
pub fn overlay(runs: &[(String, &RunResult)]) -> Result<Vec<Chart>, ChartError> {
    let all: Vec<(&str, Vec<Series>)> = runs
        .iter()
        .map(|(name, r)| (name.as_str(), series(r)))
        .collect();
    let mut out: Vec<Series> = Vec::new();
    for (name, list) in all {
        for s in list {
            let curves = s.curves.into_iter().map(|c| Curve {
                name: format!("{name} {}", c.name),
                points: c.points,
            });
            match out.iter_mut().find(|o| o.slug == s.slug) {
                Some(o) => o.curves.extend(curves),
                None => out.push(Series {
                    curves: curves.collect(),
                    levels: Vec::new(),
                    ..s
                }),
            }
        }
    }
    out.iter().filter_map(|s| draw(s).transpose()).collect()
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A curve as one line of block characters, `width` columns over `[0, x_max]`, each column the
/// highest value that falls in it (so a short peak is not averaged away), scaled to `y_max`.
/// Readings are periodic, so a column between two readings holds the last one, as a gauge
/// does; columns before the first reading are blank.
pub fn sparkline(points: &[(f64, f64)], x_max: f64, y_max: f64, width: usize) -> String {
    let mut cols: Vec<Option<f64>> = vec![None; width];
    for &(x, y) in points {
        let i = ((x / x_max.max(1e-9)) * width as f64) as usize;
        let c = &mut cols[i.min(width - 1)];
        *c = Some(c.map_or(y, |v: f64| v.max(y)));
    }
    let mut last = None;
    for c in &mut cols {
        match c {
            Some(v) => last = Some(*v),
            None => *c = last,
        }
    }
    cols.iter()
        .map(|c| match c {
            None => ' ',
            Some(v) => {
                let share = if y_max > 0.0 { v / y_max } else { 0.0 };
                BARS[((share * 8.0) as usize).min(7)]
            }
        })
        .collect()
}

/// The run's curves for a terminal: per chart, a line of level marks then one sparkline per
/// curve with its peak. Empty when nothing was read beside the run.
pub fn terminal(run: &RunResult, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for s in series(run) {
        let points = || s.curves.iter().flat_map(|c| c.points.iter());
        let x_max = points().map(|p| p.0).fold(0.0, f64::max);
        let y_max = points().map(|p| p.1).fold(0.0, f64::max);
        out.push(format!("{} ({}), {:.0} s", s.title, s.unit, x_max));
        let mut marks = vec![' '; width];
        for (t, _) in &s.levels {
            let i = ((t / x_max.max(1e-9)) * width as f64) as usize;
            marks[i.min(width - 1)] = '╷';
        }
        let names: Vec<&str> = s.levels.iter().map(|(_, l)| l.as_str()).collect();
        out.push(format!(
            "  {:<12} {}  {}",
            "levels",
            marks.iter().collect::<String>(),
            names.join(" → ")
        ));
        for c in &s.curves {
            let peak = c
                .points
                .iter()
                .map(|p| p.1)
                .fold(f64::NEG_INFINITY, f64::max);
            if !peak.is_finite() {
                continue;
            }
            out.push(format!(
                "  {:<12} {}  peak {}",
                c.name,
                sparkline(&c.points, x_max, y_max, width),
                super::document::num(peak)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_keeps_each_columns_peak_and_holds_between_readings() {
        let points = [(0.0, 0.0), (0.4, 8.0), (1.0, 4.0), (3.9, 8.0)];
        // Four columns of one second each: 8 is the top bar, 4 half way, held through 2–3 s.
        assert_eq!(sparkline(&points, 4.0, 8.0, 4), "█▅▅█");
        assert_eq!(sparkline(&[], 4.0, 8.0, 3), "   ");
        assert_eq!(sparkline(&[(3.5, 8.0)], 4.0, 8.0, 4), "   █");
        assert_eq!(sparkline(&[(1.0, 0.0)], 1.0, 0.0, 2), " ▁");
    }
}
