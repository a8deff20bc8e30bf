//! A level's share of the GPU samples: utilisation, memory, power, energy and joules per output
//! token over the level's time window.
//!
//! Energy comes from the total-energy counter where the GPU has one (its difference across the
//! window, the counter interpolated linearly at the window's edges), otherwise from power
//! integrated over the window (power taken as linear between samples). Either needs readings
//! on both sides of the window: a GPU lost mid-level, or a window shorter than the sampling
//! interval at the run's edges, gives no energy and says why, rather than the energy of part of
//! the window divided by the tokens of all of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::sampler::{Reading, Sample};

/// One GPU over one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GpuLevel {
    pub index: u32,
    /// Samples taken inside the window.
    pub samples: u64,
    pub mean_sm_utilization_pct: Option<f64>,
    pub max_sm_utilization_pct: Option<u32>,
    pub peak_memory_used_bytes: Option<u64>,
    /// Energy over the window divided by its length.
    pub mean_power_w: Option<f64>,
    pub energy_j: Option<f64>,
    /// `counter` or `integrated power`; or why there is no energy.
    pub energy_from: String,
}

/// Every GPU over one level, and the energy per output token of them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LevelGpu {
    /// The window, seconds: the level's wall time, warm-up included.
    pub window_s: f64,
    pub gpus: Vec<GpuLevel>,
    /// Sum over the GPUs; absent when any GPU's is.
    pub energy_j: Option<f64>,
    /// Output tokens generated in the window, warm-up requests included (they drew the power).
    pub output_tokens: u64,
    pub joules_per_output_token: Option<f64>,
}

/// The value of the piecewise-linear series `points` at `t`, when `t` lies within it.
fn at(points: &[(f64, f64)], t: f64) -> Option<f64> {
    let i = points.iter().position(|&(pt, _)| pt >= t)?;
    let (t1, v1) = points[i];
    if i == 0 {
        return (t1 == t).then_some(v1);
    }
    let (t0, v0) = points[i - 1];
    Some(v0 + (v1 - v0) * (t - t0) / (t1 - t0))
}

/// The integral of the piecewise-linear series `points` over [a, b], when it covers [a, b].
fn integral(points: &[(f64, f64)], a: f64, b: f64) -> Option<f64> {
    let (va, vb) = (at(points, a)?, at(points, b)?);
    // The window's edges and every point strictly inside, in order.
    let mut knots = vec![(a, va)];
    knots.extend(points.iter().copied().filter(|&(t, _)| t > a && t < b));
    knots.push((b, vb));
    Some(
        knots
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum(),
    )
}

fn series(samples: &[Sample], index: u32, f: impl Fn(&Reading) -> Option<f64>) -> Vec<(f64, f64)> {
    samples
        .iter()
        .filter_map(|s| {
            let r = s.gpus.iter().find(|r| r.index == index)?;
            Some((s.t_s, f(r)?))
        })
        .collect()
}

fn gpu_level(samples: &[Sample], index: u32, a: f64, b: f64) -> GpuLevel {
    let inside: Vec<&Reading> = samples
        .iter()
        .filter(|s| s.t_s >= a && s.t_s <= b)
        .filter_map(|s| s.gpus.iter().find(|r| r.index == index))
        .collect();
    let utils: Vec<u32> = inside.iter().filter_map(|r| r.sm_utilization_pct).collect();
    let counter = series(samples, index, |r| r.energy_j);
    let power = series(samples, index, |r| r.power_w);
    let from_counter = at(&counter, a).zip(at(&counter, b)).map(|(ea, eb)| eb - ea);
    let (energy_j, energy_from) = match (from_counter, integral(&power, a, b)) {
        (Some(e), _) => (Some(e), "counter".to_owned()),
        (None, Some(e)) => (Some(e), "integrated power".to_owned()),
        (None, None) => (
            None,
            "no energy: the readings do not span the level (the GPU was lost, or the level is \
             shorter than the sampling interval)"
                .to_owned(),
        ),
    };
    let window = b - a;
    GpuLevel {
        index,
        samples: inside.len() as u64,
        mean_sm_utilization_pct: (!utils.is_empty())
            .then(|| utils.iter().map(|&u| f64::from(u)).sum::<f64>() / utils.len() as f64),
        max_sm_utilization_pct: utils.iter().copied().max(),
        peak_memory_used_bytes: inside.iter().filter_map(|r| r.memory_used_bytes).max(),
        mean_power_w: energy_j.filter(|_| window > 0.0).map(|e| e / window),
        energy_j,
        energy_from,
    }
}

/// The GPUs over the window [`from_s`, `to_s`] of sampler time, which produced `output_tokens`.
pub fn level(samples: &[Sample], from_s: f64, to_s: f64, output_tokens: u64) -> LevelGpu {
    let mut indices: Vec<u32> = samples
        .iter()
        .flat_map(|s| s.gpus.iter().map(|r| r.index))
        .collect();
    indices.sort_unstable();
    indices.dedup();
    let gpus: Vec<GpuLevel> = indices
        .iter()
        .map(|&i| gpu_level(samples, i, from_s, to_s))
        .collect();
    let energy_j = if gpus.is_empty() {
        None
    } else {
        gpus.iter().map(|g| g.energy_j).sum::<Option<f64>>()
    };
    LevelGpu {
        window_s: to_s - from_s,
        energy_j,
        output_tokens,
        joules_per_output_token: energy_j
            .filter(|_| output_tokens > 0)
            .map(|e| e / output_tokens as f64),
        gpus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, power_w: Option<f64>, energy_j: Option<f64>, util: u32) -> Sample {
        Sample {
            t_s,
            gpus: vec![Reading {
                index: 0,
                sm_utilization_pct: Some(util),
                memory_used_bytes: Some(1000 + util as u64),
                power_w,
                energy_j,
            }],
        }
    }

    #[test]
    fn power_is_integrated_over_the_window_when_there_is_no_counter() {
        // 100 W, then 300 W from t = 2: a ramp between the samples at 1 and 2.
        let s = [
            sample(0.0, Some(100.0), None, 10),
            sample(1.0, Some(100.0), None, 20),
            sample(2.0, Some(300.0), None, 90),
            sample(3.0, Some(300.0), None, 80),
        ];
        let l = level(&s, 0.5, 2.5, 1000);
        let g = &l.gpus[0];
        // 0.5·100 + (100+300)/2 + 0.5·300 = 400 J over 2 s.
        assert_eq!(g.energy_j, Some(400.0));
        assert_eq!(g.energy_from, "integrated power");
        assert_eq!(g.mean_power_w, Some(200.0));
        assert_eq!(l.joules_per_output_token, Some(0.4));
        assert_eq!((g.samples, g.max_sm_utilization_pct), (2, Some(90)));
        assert_eq!(g.mean_sm_utilization_pct, Some(55.0));
        assert_eq!(g.peak_memory_used_bytes, Some(1090));
    }

    #[test]
    fn the_counter_wins_where_it_exists_and_is_interpolated_at_the_edges() {
        let s = [
            sample(0.0, Some(999.0), Some(1000.0), 0),
            sample(2.0, Some(999.0), Some(1500.0), 0),
        ];
        let l = level(&s, 0.5, 1.5, 10);
        assert_eq!(l.gpus[0].energy_j, Some(250.0));
        assert_eq!(l.gpus[0].energy_from, "counter");
        assert_eq!(l.joules_per_output_token, Some(25.0));
    }

    #[test]
    fn readings_that_stop_inside_the_window_give_no_energy() {
        // Lost after t = 1: nothing spans the window's end.
        let s = [
            sample(0.0, Some(100.0), None, 0),
            sample(1.0, Some(100.0), None, 0),
            Sample {
                t_s: 2.0,
                gpus: vec![Reading {
                    index: 0,
                    sm_utilization_pct: None,
                    memory_used_bytes: None,
                    power_w: None,
                    energy_j: None,
                }],
            },
        ];
        let l = level(&s, 0.5, 1.8, 100);
        assert_eq!(l.gpus[0].energy_j, None);
        assert!(l.gpus[0].energy_from.starts_with("no energy"));
        assert_eq!((l.energy_j, l.joules_per_output_token), (None, None));
        assert_eq!(level(&[], 0.0, 1.0, 5).energy_j, None);
    }
}
