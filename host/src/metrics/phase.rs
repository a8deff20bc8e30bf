//! How synchronised a closed-loop level's requests were: whether its clients sent in lockstep.
//!
//! A closed-loop client sends, waits for its answer and sends again, so it sends once per cycle
//! (one request's latency). Clients that start together and get equal answers keep sending
//! together — the server sees waves, not users, and a queue that forms once per wave inflates
//! TTFT by up to a whole cycle. The check takes each measured send's phase within the cycle (the
//! median latency), φ = (send mod cycle) / cycle, and their mean resultant length
//! R = |mean(e^{2πiφ})|: about 1/√n for phases spread evenly or at random, near 1 when the sends
//! bunch at one point of the cycle. Latencies that vary (outputs of different lengths) scatter
//! the phases by themselves, and R then stays low: only a lockstep that persists shows.
//!
//! R alone misses a lockstep in several waves: 42 clients on 32 batch slots send as a wave of
//! 32 and one of 10 whose phases drift apart (R 0.47 where the closed form's even phases would
//! give ~0.05, measured on the simulator). So the check also takes the gaps between successive
//! sends: spread phases leave gaps near the mean (even) or exponential about it (random: 9.5 %
//! below a tenth of the mean), while waves leave almost every gap near zero. The share of gaps
//! below a tenth of the mean, `bunched`, needs no cycle at all.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::RequestRecord;

/// R at and above which a level is called lockstep: far above the ~1/√n of spread phases for
/// the hundreds of requests a level has, and below the 0.9+ of clients started together.
pub const LOCKSTEP_AT: f64 = 0.5;
/// `bunched` at and above which a level is called lockstep: five times what random phases give.
pub const BUNCHED_AT: f64 = 0.5;
/// A gap is bunched below this share of the mean gap.
const BUNCHED_GAP: f64 = 0.1;

/// Fewest measured requests per client for a verdict: a client must have sent more than once.
const MIN_PER_CLIENT: usize = 2;

/// A level's phase check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseCheck {
    /// The cycle the phases are taken in: the median latency of the measured requests, in ms.
    pub cycle_ms: f64,
    /// The mean resultant length of the send phases, 0 (spread) to 1 (all at one phase).
    pub concentration: f64,
    /// The share of gaps between successive sends below a tenth of the mean gap: ~0 for even
    /// phases, ~0.1 for random ones, near 1 for waves.
    pub bunched: f64,
    /// `concentration` ≥ [`LOCKSTEP_AT`] or `bunched` ≥ [`BUNCHED_AT`]: the clients sent in
    /// waves.
    pub lockstep: bool,
}

impl PhaseCheck {
    /// The check for a closed-loop level of `clients` clients, or none where it says nothing:
    /// one client, or too few requests per client.
    pub fn of(records: &[RequestRecord], clients: u32) -> Option<PhaseCheck> {
        let measured: Vec<&RequestRecord> = records.iter().filter(|r| !r.warmup).collect();
        if clients < 2 || measured.len() < MIN_PER_CLIENT * clients as usize {
            return None;
        }
        let mut latencies: Vec<f64> = measured.iter().map(|r| r.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        let cycle_ms = latencies[latencies.len() / 2];
        if cycle_ms.is_nan() || cycle_ms <= 0.0 {
            return None;
        }
        let cycle_s = cycle_ms / 1e3;
        let (mut x, mut y) = (0.0, 0.0);
        for r in &measured {
            let angle = std::f64::consts::TAU * (r.send_s / cycle_s).fract();
            x += angle.cos();
            y += angle.sin();
        }
        let concentration = x.hypot(y) / measured.len() as f64;
        let mut sends: Vec<f64> = measured.iter().map(|r| r.send_s).collect();
        sends.sort_by(f64::total_cmp);
        let gaps: Vec<f64> = sends.windows(2).map(|w| w[1] - w[0]).collect();
        let mean_gap = (sends[sends.len() - 1] - sends[0]) / gaps.len() as f64;
        let bunched =
            gaps.iter().filter(|&&g| g < BUNCHED_GAP * mean_gap).count() as f64 / gaps.len() as f64;
        Some(PhaseCheck {
            cycle_ms,
            concentration,
            bunched,
            lockstep: concentration >= LOCKSTEP_AT || bunched >= BUNCHED_AT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `clients` clients each sending every `cycle` s from `start(i)`, `rounds` times.
    fn level(
        clients: u32,
        rounds: u32,
        cycle: f64,
        start: impl Fn(u32) -> f64,
    ) -> Vec<RequestRecord> {
        (0..clients)
            .flat_map(|c| {
                let first = start(c);
                (0..rounds).map(move |k| RequestRecord {
                    send_s: first + f64::from(k) * cycle,
                    latency_ms: cycle * 1e3,
                    ..Default::default()
                })
            })
            .collect()
    }

    #[test]
    fn clients_started_together_are_lockstep_and_spread_ones_are_not() {
        let together = PhaseCheck::of(&level(42, 10, 0.3, |_| 0.0), 42).unwrap();
        assert!(
            together.lockstep && together.concentration > 0.99,
            "{together:?}"
        );
        assert!(together.bunched > 0.95, "{together:?}");
        assert!((together.cycle_ms - 300.0).abs() < 1e-9);
        let spread =
            PhaseCheck::of(&level(42, 10, 0.3, |c| 0.3 * f64::from(c) / 42.0), 42).unwrap();
        assert!(
            !spread.lockstep && spread.concentration < 0.01,
            "{spread:?}"
        );
        assert!(spread.bunched < 0.01, "{spread:?}");
        // Two waves half a cycle apart cancel in R, but their gaps are still bunched.
        let halves = PhaseCheck::of(
            &level(40, 10, 0.3, |c| if c % 2 == 0 { 0.0 } else { 0.15 }),
            40,
        )
        .unwrap();
        assert!(halves.concentration < 0.01, "{halves:?}");
        assert!(halves.lockstep && halves.bunched > 0.9, "{halves:?}");
    }

    #[test]
    fn no_verdict_without_enough_to_judge() {
        assert!(PhaseCheck::of(&level(1, 50, 0.3, |_| 0.0), 1).is_none());
        assert!(PhaseCheck::of(&level(8, 1, 0.3, |_| 0.0), 8).is_none());
        let mut warm = level(8, 4, 0.3, |_| 0.0);
        warm.iter_mut().for_each(|r| r.warmup = true);
        assert!(PhaseCheck::of(&warm, 8).is_none());
    }
}
