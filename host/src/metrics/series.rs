//! A staged run over time: the planned load beside what was in flight, sent, completed and how
//! fast the first tokens came, per interval, on one axis from the first stage's start.
//!
//! Computed after the run from the records (their send and end times), not sampled while it
//! goes: nothing is added to the hot path, and the in-flight figure is exact — each request's
//! share of each interval it overlapped — where a sampler would see only the instants it woke.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::RequestRecord;
use crate::plan::{Profile, StageUnit};

/// Most points a series holds: the interval widens for long runs.
const MAX_POINTS: f64 = 600.0;
/// The interval widths a series may use, seconds.
const INTERVALS: [f64; 12] = [
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 300.0, 900.0,
];

/// A staged run's time series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadSeries {
    /// Seconds per point.
    pub interval_s: f64,
    /// What `target` counts: clients (closed loop) or requests per second (open loop).
    pub unit: StageUnit,
    /// Each stage's start, seconds.
    pub stage_starts_s: Vec<f64>,
    pub points: Vec<SeriesPoint>,
}

/// One interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeriesPoint {
    /// The interval's start, seconds from the first stage's start.
    pub t_s: f64,
    /// The planned load at the interval's middle (clients or requests per second).
    pub target: f64,
    /// Requests in flight, averaged over the interval.
    pub in_flight: f64,
    /// Requests sent in it, per second.
    pub sent_per_s: f64,
    /// Requests that ended in it without error, per second.
    pub completed_per_s: f64,
    /// Requests that failed in it, per second.
    pub failed_per_s: f64,
    /// Output tokens of the requests that ended in it, per second.
    pub output_tokens_per_s: f64,
    /// Median and 99th percentile TTFT of the requests whose first token came in it.
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
}

/// The series of a staged run: `stages` holds each stage's records (their times count from
/// that stage's start, which `profile` places).
pub fn load_series(profile: &Profile, stages: &[Vec<RequestRecord>]) -> LoadSeries {
    let starts = profile.starts();
    let on_axis = || {
        stages
            .iter()
            .zip(&starts)
            .flat_map(|(records, &at)| records.iter().map(move |r| (at, r)))
    };
    let last_end = on_axis()
        .map(|(at, r)| at + r.send_s + r.latency_ms / 1e3)
        .fold(profile.total_s(), f64::max);
    let interval = INTERVALS
        .into_iter()
        .find(|i| last_end / i <= MAX_POINTS)
        .unwrap_or(INTERVALS[INTERVALS.len() - 1]);
    // The epsilon keeps a time on a boundary (2.5 s in 0.1-s steps) out of the next interval.
    let bins = ((last_end / interval - 1e-9).ceil() as usize).max(1);
    let mut points: Vec<SeriesPoint> = (0..bins)
        .map(|b| {
            let t = b as f64 * interval;
            SeriesPoint {
                t_s: t,
                target: profile.target_at(t + interval / 2.0),
                ..SeriesPoint::default()
            }
        })
        .collect();
    let bin = |t: f64| ((t / interval + 1e-9).floor().max(0.0) as usize).min(bins - 1);
    let mut ttfts: Vec<Vec<f64>> = vec![Vec::new(); bins];
    for (at, r) in on_axis() {
        let sent = at + r.send_s;
        let ended = sent + r.latency_ms / 1e3;
        points[bin(sent)].sent_per_s += 1.0;
        let end = &mut points[bin(ended)];
        if r.error.is_none() {
            end.completed_per_s += 1.0;
            end.output_tokens_per_s += f64::from(r.output_tokens);
        } else {
            end.failed_per_s += 1.0;
        }
        if let Some(ttft) = r.ttft_ms {
            ttfts[bin(sent + ttft / 1e3)].push(ttft);
        }
        // Its share of every interval it overlapped.
        for (b, p) in points
            .iter_mut()
            .enumerate()
            .take(bin(ended) + 1)
            .skip(bin(sent))
        {
            let lo = sent.max(b as f64 * interval);
            let hi = ended.min((b + 1) as f64 * interval);
            p.in_flight += (hi - lo).max(0.0) / interval;
        }
    }
    for (p, mut t) in points.iter_mut().zip(ttfts) {
        p.sent_per_s /= interval;
        p.completed_per_s /= interval;
        p.failed_per_s /= interval;
        p.output_tokens_per_s /= interval;
        if !t.is_empty() {
            t.sort_by(f64::total_cmp);
            let at = |q: f64| t[((q * t.len() as f64).ceil() as usize).clamp(1, t.len()) - 1];
            p.ttft_p50_ms = Some(at(0.5));
            p.ttft_p99_ms = Some(at(0.99));
        }
    }
    LoadSeries {
        interval_s: interval,
        unit: profile.unit,
        stage_starts_s: starts,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::stages;

    fn record(send_s: f64, latency_ms: f64, ttft_ms: f64) -> RequestRecord {
        RequestRecord {
            send_s,
            latency_ms,
            ttft_ms: Some(ttft_ms),
            output_tokens: 10,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn in_flight_is_each_requests_share_of_each_interval() {
        let profile = stages::parse("1s:4,1s:4", StageUnit::Clients).unwrap();
        // Stage 2's request starts 0.5 s into it (1.5 s on the axis) and lasts 1 s.
        let stage_one = vec![record(0.0, 500.0, 100.0), record(0.25, 250.0, 50.0)];
        let stage_two = vec![record(0.5, 1000.0, 200.0)];
        let s = load_series(&profile, &[stage_one, stage_two]);
        assert_eq!(s.interval_s, 0.1);
        assert_eq!(s.points.len(), 25, "to the last answer at 2.5 s");
        assert_eq!(s.stage_starts_s, vec![0.0, 1.0]);
        let p = |t: f64| &s.points[(t * 10.0).round() as usize];
        assert!((p(0.0).in_flight - 1.0).abs() < 1e-9);
        assert!((p(0.3).in_flight - 2.0).abs() < 1e-9);
        assert!((p(0.6).in_flight).abs() < 1e-9);
        assert!((p(2.0).in_flight - 1.0).abs() < 1e-9);
        assert_eq!(p(1.5).sent_per_s, 10.0);
        assert_eq!(p(2.4).completed_per_s, 10.0);
        assert_eq!(p(2.4).output_tokens_per_s, 100.0);
        assert_eq!(
            s.points.iter().map(|x| x.completed_per_s).sum::<f64>(),
            30.0
        );
        assert_eq!(p(1.7).ttft_p50_ms, Some(200.0));
        assert_eq!(p(0.3).ttft_p50_ms, Some(50.0));
        assert!((p(0.0).target - 0.2).abs() < 1e-9, "{}", p(0.0).target);
        assert_eq!(p(1.5).target, 4.0);
    }

    #[test]
    fn long_runs_get_wider_intervals() {
        let profile = stages::parse("2h:10", StageUnit::Clients).unwrap();
        let s = load_series(&profile, &[Vec::new()]);
        assert_eq!(s.interval_s, 15.0);
        assert!(s.points.len() <= 600);
    }
}
