//! Staged load, as k6 users write it: `30s:100,5m:100,30s:0` moves the load linearly from where
//! the previous stage ended (zero before the first) to each target over each duration — clients
//! for a closed loop (`--stages`), requests per second for an open loop (`--rate-stages`).
//!
//! A staged run is one continuous schedule cut into levels, one per stage, so each stage gets
//! its own results without a pause or a drain between them. The schedule is computed ahead from
//! the profile alone: client k of a closed loop is active while the target is above k (so a
//! ramp from 0 to N over D starts client k at k·D/N, the instant `--ramp-up` gives it — one
//! rule for both), and an open loop's arrivals are a renewal process run on the cumulative rate
//! Λ(t) = ∫λ, so that, at a constant rate, they are exactly the arrivals `--request-rate` draws.
//! Ramping down lets a client finish the request it is in (k6's graceful ramp-down) and sends no
//! new one.

use super::{Bound, LevelPlan, Load};

/// Most stages a run may have.
pub const MAX_STAGES: usize = 100;

/// What a stage's numbers count.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum StageUnit {
    /// Closed-loop clients.
    Clients,
    /// Open-loop arrivals per second.
    Rate,
}

impl StageUnit {
    fn noun(self) -> &'static str {
        match self {
            StageUnit::Clients => "clients",
            StageUnit::Rate => "req/s",
        }
    }
}

/// Why a stage list cannot be run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StageError {
    #[error("stage `{0}` is not DURATION:TARGET (e.g. 30s:100)")]
    Form(String),
    #[error("stage `{stage}`: {reason}")]
    Value { stage: String, reason: String },
    #[error("no stages given")]
    Empty,
    #[error("{0} stages: at most {MAX_STAGES}")]
    TooMany(usize),
    #[error("the stages never rise above zero: nothing would be sent")]
    NoLoad,
    #[error("the stages last no time at all")]
    NoTime,
}

/// One stage: the load moves linearly from `from` to `to` over `seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub seconds: f64,
    pub from: f64,
    pub to: f64,
}

/// A run's stages, back to back from time zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub unit: StageUnit,
    pub stages: Vec<Stage>,
}

/// Parses `30s:100,5m:100,30s:0`; clients must be whole numbers, rates finite and ≥ 0. Zero
/// durations are allowed: a step to the new target.
pub fn parse(spec: &str, unit: StageUnit) -> Result<Profile, StageError> {
    let mut stages = Vec::new();
    let mut from = 0.0;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (d, t) = part
            .split_once(':')
            .ok_or_else(|| StageError::Form(part.to_owned()))?;
        let bad = |reason: String| StageError::Value {
            stage: part.to_owned(),
            reason,
        };
        let seconds = crate::duration::parse(d.trim())
            .map_err(|e| bad(e.to_string()))?
            .as_secs_f64();
        let to = match unit {
            StageUnit::Clients => t
                .trim()
                .parse::<u32>()
                .map(f64::from)
                .map_err(|_| bad(format!("`{}` is not a whole number of clients", t.trim())))?,
            StageUnit::Rate => t
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or_else(|| bad(format!("`{}` is not a rate ≥ 0", t.trim())))?,
        };
        stages.push(Stage { seconds, from, to });
        from = to;
    }
    if stages.is_empty() {
        return Err(StageError::Empty);
    }
    if stages.len() > MAX_STAGES {
        return Err(StageError::TooMany(stages.len()));
    }
    if stages.iter().all(|s| s.to <= 0.0) {
        return Err(StageError::NoLoad);
    }
    if stages.iter().map(|s| s.seconds).sum::<f64>() <= 0.0 {
        return Err(StageError::NoTime);
    }
    Ok(Profile { unit, stages })
}

impl Profile {
    /// The profile of a run's levels when they are all stages (in order); `None` otherwise.
    pub fn of(levels: &[LevelPlan]) -> Option<Profile> {
        let mut unit = None;
        let mut stages = Vec::with_capacity(levels.len());
        for l in levels {
            let Load::Stage {
                unit: u, from, to, ..
            } = l.load
            else {
                return None;
            };
            if unit.replace(u).is_some_and(|prev| prev != u) {
                return None;
            }
            let Bound::Seconds(seconds) = l.bound else {
                return None;
            };
            stages.push(Stage { seconds, from, to });
        }
        Some(Profile {
            unit: unit?,
            stages,
        })
    }

    /// A closed-loop ramp from 0 to `clients` over `ramp`, then a hold: `--ramp-up`'s shape.
    pub fn ramp(clients: u32, ramp: std::time::Duration) -> Profile {
        let n = f64::from(clients);
        Profile {
            unit: StageUnit::Clients,
            stages: vec![
                Stage {
                    seconds: ramp.as_secs_f64(),
                    from: 0.0,
                    to: n,
                },
                Stage {
                    seconds: f64::INFINITY,
                    from: n,
                    to: n,
                },
            ],
        }
    }

    /// Each stage's start, seconds from the first's.
    pub fn starts(&self) -> Vec<f64> {
        let mut t = 0.0;
        self.stages
            .iter()
            .map(|s| {
                let at = t;
                t += s.seconds;
                at
            })
            .collect()
    }

    /// When the last stage ends.
    pub fn total_s(&self) -> f64 {
        self.stages.iter().map(|s| s.seconds).sum()
    }

    /// The stage under way at `t` (the last for `t` past the end).
    pub fn stage_at(&self, t: f64) -> usize {
        let mut end = 0.0;
        for (i, s) in self.stages.iter().enumerate() {
            end += s.seconds;
            if t < end {
                return i;
            }
        }
        self.stages.len().saturating_sub(1)
    }

    /// The planned load at `t` (clients or requests per second); zero outside the stages.
    pub fn target_at(&self, t: f64) -> f64 {
        let mut start = 0.0;
        for s in &self.stages {
            if t < start + s.seconds {
                return s.from + (s.to - s.from) * ((t - start) / s.seconds).clamp(0.0, 1.0);
            }
            start += s.seconds;
        }
        0.0
    }

    /// The most clients any stage asks for.
    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.to.max(s.from))
            .fold(0.0, f64::max)
    }

    /// The times client `k` (from 0) is active: where the target is above k, as
    /// `[start, end)` intervals in order. Past the last stage nobody is.
    pub fn active(&self, k: u32) -> Vec<(f64, f64)> {
        let k = f64::from(k);
        let mut out: Vec<(f64, f64)> = Vec::new();
        let mut t0 = 0.0;
        for s in &self.stages {
            let t1 = t0 + s.seconds;
            // Where along this stage the target is above k: a linear segment, so one interval.
            let span = if s.from == s.to || s.seconds == 0.0 {
                (s.to > k && s.seconds > 0.0).then_some((t0, t1))
            } else {
                let cross = t0 + (k - s.from) / (s.to - s.from) * s.seconds;
                match (s.from > k, s.to > k) {
                    (true, true) => Some((t0, t1)),
                    (false, true) => Some((cross.max(t0), t1)),
                    (true, false) => Some((t0, cross.min(t1))),
                    (false, false) => None,
                }
            };
            if let Some((a, b)) = span.filter(|(a, b)| b > a) {
                match out.last_mut() {
                    Some(last) if (last.1 - a).abs() < 1e-12 => last.1 = b,
                    _ => out.push((a, b)),
                }
            }
            t0 = t1;
        }
        out
    }

    /// Λ(t): the arrivals an open loop expects by `t`.
    pub fn cumulative(&self, t: f64) -> f64 {
        let mut total = 0.0;
        let mut start = 0.0;
        for s in &self.stages {
            let d = (t - start).clamp(0.0, s.seconds);
            if s.seconds > 0.0 {
                let slope = (s.to - s.from) / s.seconds;
                total += s.from * d + slope * d * d / 2.0;
            }
            if t <= start + s.seconds {
                break;
            }
            start += s.seconds;
        }
        total
    }

    /// The `t` at which Λ(t) = `u`; `None` past the last stage.
    pub fn inverse_cumulative(&self, u: f64) -> Option<f64> {
        let mut before = 0.0;
        let mut start = 0.0;
        for s in &self.stages {
            let area = (s.from + s.to) / 2.0 * s.seconds;
            if s.seconds > 0.0 && u <= before + area {
                let need = u - before;
                let slope = (s.to - s.from) / s.seconds;
                // Solve from·d + slope·d²/2 = need for the least d ≥ 0.
                let d = if slope.abs() < 1e-12 {
                    need / s.from
                } else {
                    let disc = (s.from * s.from + 2.0 * slope * need).max(0.0);
                    (disc.sqrt() - s.from) / slope
                };
                return Some(start + d.clamp(0.0, s.seconds));
            }
            before += area;
            start += s.seconds;
        }
        None
    }

    /// The open loop's arrival times: gamma-distributed gaps of mean 1 (shape `burstiness`, as
    /// `--request-rate` draws them) on the Λ axis, mapped back to time.
    pub fn arrivals(&self, burstiness: f64, seed: u64) -> Vec<f64> {
        let unit = super::arrivals::arrival_offsets_iter(1.0, burstiness, seed);
        let mut out = Vec::new();
        for u in unit {
            match self.inverse_cumulative(u) {
                Some(t) => out.push(t),
                None => break,
            }
        }
        out
    }

    /// One level per stage, as the run's plan carries them.
    pub fn levels(
        &self,
        burstiness: f64,
        max_concurrency: Option<u32>,
        seed: u64,
    ) -> Vec<LevelPlan> {
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| LevelPlan {
                load: Load::Stage {
                    unit: self.unit,
                    from: s.from,
                    to: s.to,
                    burstiness,
                    max_concurrency,
                },
                bound: Bound::Seconds(s.seconds),
                warmup: super::Warmup::None,
                seed: seed.wrapping_add(i as u64),
            })
            .collect()
    }
}

/// A stage's label: `clients 0→100`, `100 clients`, `req/s 5→20`.
pub fn label(unit: StageUnit, from: f64, to: f64) -> String {
    if from == to {
        format!("{to} {}", unit.noun())
    } else {
        format!("{} {from}→{to}", unit.noun())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(spec: &str) -> Profile {
        parse(spec, StageUnit::Clients).unwrap()
    }

    #[test]
    fn parses_k6_stages_and_refuses_what_cannot_run() {
        let p = clients("30s:100, 5m:100,30s:0");
        assert_eq!(p.stages.len(), 3);
        assert_eq!(
            p.stages[0],
            Stage {
                seconds: 30.0,
                from: 0.0,
                to: 100.0
            }
        );
        assert_eq!(p.stages[2].from, 100.0);
        assert_eq!(p.total_s(), 360.0);
        assert_eq!(p.starts(), vec![0.0, 30.0, 330.0]);
        assert!(matches!(
            parse("30s", StageUnit::Clients),
            Err(StageError::Form(_))
        ));
        assert!(matches!(
            parse("30s:1.5", StageUnit::Clients),
            Err(StageError::Value { .. })
        ));
        assert!(parse("30s:1.5", StageUnit::Rate).is_ok());
        assert!(matches!(
            parse("soon:5", StageUnit::Rate),
            Err(StageError::Value { .. })
        ));
        assert!(matches!(
            parse("10s:-1", StageUnit::Rate),
            Err(StageError::Value { .. })
        ));
        assert_eq!(parse("", StageUnit::Rate), Err(StageError::Empty));
        assert_eq!(parse("10s:0", StageUnit::Rate), Err(StageError::NoLoad));
        assert_eq!(parse("0s:5", StageUnit::Rate), Err(StageError::NoTime));
        let many = vec!["1s:1"; MAX_STAGES + 1].join(",");
        assert!(matches!(
            parse(&many, StageUnit::Clients),
            Err(StageError::TooMany(_))
        ));
    }

    #[test]
    fn clients_are_active_while_the_target_is_above_them() {
        let p = clients("10s:10,10s:10,10s:0");
        // Ramp up: client k starts at k s; ramp down: client k stops at 30 − (k + 1)... the
        // target falls through k at 20 + (10 − k) s.
        for k in 0..10 {
            let kf = f64::from(k);
            assert_eq!(p.active(k), vec![(kf, 30.0 - kf)], "client {k}");
        }
        assert!(p.active(10).is_empty());
        // A step up and back down, then up again: two intervals.
        let p = clients("0s:4,5s:4,0s:1,5s:1,0s:4,5s:4");
        assert_eq!(p.active(3), vec![(0.0, 5.0), (10.0, 15.0)]);
        assert_eq!(p.active(0), vec![(0.0, 15.0)]);
        // `--ramp-up`'s shape starts client k of N at k·D/N.
        let r = Profile::ramp(8, std::time::Duration::from_secs(4));
        assert_eq!(r.active(3)[0].0, 1.5);
    }

    #[test]
    fn the_cumulative_rate_inverts_and_arrivals_follow_it() {
        let p = parse("10s:10,10s:10,10s:0", StageUnit::Rate).unwrap();
        assert_eq!(p.cumulative(10.0), 50.0);
        assert_eq!(p.cumulative(20.0), 150.0);
        assert_eq!(p.cumulative(30.0), 200.0);
        for t in [0.5, 3.0, 10.0, 14.0, 22.0, 29.9] {
            let back = p.inverse_cumulative(p.cumulative(t)).unwrap();
            assert!((back - t).abs() < 1e-9, "{t} → {back}");
        }
        assert!(p.inverse_cumulative(200.5).is_none());
        // Over 200 expected arrivals a Poisson count is 200 ± 14 (one s.d.); the ramp holds a
        // quarter of them, the hold half.
        let a = p.arrivals(1.0, 7);
        assert_eq!(a, p.arrivals(1.0, 7), "the seed fixes the schedule");
        assert!((150..250).contains(&a.len()), "{}", a.len());
        let in_hold = a.iter().filter(|&&t| (10.0..20.0).contains(&t)).count();
        assert!((70..130).contains(&in_hold), "{in_hold}");
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_constant_rate_draws_the_request_rate_schedule() {
        let p = parse("0s:5,20s:5", StageUnit::Rate).unwrap();
        let staged = p.arrivals(1.0, 3);
        let plain = crate::plan::arrivals::arrival_offsets(5.0, 1.0, staged.len(), 3);
        for (a, b) in staged.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn stages_are_found_by_time_and_target() {
        let p = clients("10s:10,10s:10,10s:0");
        assert_eq!(p.stage_at(0.0), 0);
        assert_eq!(p.stage_at(10.0), 1);
        assert_eq!(p.stage_at(99.0), 2);
        assert_eq!(p.target_at(5.0), 5.0);
        assert_eq!(p.target_at(25.0), 5.0);
        assert_eq!(p.target_at(31.0), 0.0);
        assert_eq!(p.peak(), 10.0);
        let levels = p.levels(1.0, None, 9);
        assert_eq!(Profile::of(&levels), Some(p));
        assert_eq!(label(StageUnit::Clients, 0.0, 10.0), "clients 0→10");
        assert_eq!(label(StageUnit::Rate, 2.5, 2.5), "2.5 req/s");
    }
}
