//! How late the client itself was during a level, so a measurement it cannot vouch for is not
//! shown as if it could (as k6 reports its dropped iterations).
//!
//! Two figures. The event loop's lateness: a probe task yields and times how long the
//! runtime takes to poll it again — the wait a task whose socket became readable also has —
//! every [`PERIOD`]. And the CPU the process used over the level against the cores it may run
//! on. A level is client-limited when the process used [`BUSY_SHARE`] of its cores (the OS
//! then preempts the client between taking a send's time and writing it, and the client, not
//! the server, may be what the throughput shows), or when the loop was late at its 99th
//! percentile past a limit that depends on where arrival times came from:
//! - timed by the clock after each read, every millisecond a read waits is a millisecond of
//!   error in TTFT and ITL: [`CLOCK_LATE_LIMIT`];
//! - timed by the kernel's receive stamps, a late read keeps its time; what lateness still
//!   does is merge into one read, under one stamp, tokens that arrived apart, and start
//!   scheduled sends late: [`STAMPED_LATE_LIMIT`], half the 10 ms between tokens of a fast
//!   server's stream.
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How often the probe measures.
const PERIOD: Duration = Duration::from_millis(10);

/// Event-loop lateness (p99) past which a level timed by the clock is client-limited.
pub const CLOCK_LATE_LIMIT: Duration = Duration::from_millis(1);

/// Event-loop lateness (p99) past which a level timed by kernel stamps is client-limited.
pub const STAMPED_LATE_LIMIT: Duration = Duration::from_millis(5);

/// Share of the cores the process may use past which a level is client-limited.
pub const BUSY_SHARE: f64 = 0.9;

/// The client's own load during one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientLoad {
    /// How late the event loop polled a ready task, p50 / p99 / max, in ms.
    pub loop_late_p50_ms: f64,
    pub loop_late_p99_ms: f64,
    pub loop_late_max_ms: f64,
    /// CPU the process used over the level, in cores (user + system), when the platform
    /// says.
    pub cpu_cores: Option<f64>,
    /// Of which system (kernel) time, in cores.
    pub cpu_system_cores: Option<f64>,
    /// Cores the process may run on.
    pub cores: usize,
    /// The measurement was limited by the client: `why` says by what.
    pub limited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// A level's watch, started with it.
pub struct Watch {
    probe: tokio::task::JoinHandle<Vec<Duration>>,
    stop: tokio_util::sync::CancellationToken,
    cpu: Option<(f64, f64)>,
    started: Instant,
}

impl Watch {
    /// Starts watching (inside the runtime the level runs on).
    pub fn start() -> Watch {
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        let probe = tokio::spawn(async move {
            let mut late = Vec::new();
            loop {
                tokio::select! {
                    () = token.cancelled() => return late,
                    () = tokio::time::sleep(PERIOD) => {}
                }
                let asked = Instant::now();
                tokio::task::yield_now().await;
                late.push(asked.elapsed());
            }
        });
        Watch {
            probe,
            stop,
            cpu: cpu_seconds(),
            started: Instant::now(),
        }
    }

    /// Ends the watch: the level's figures and verdict; `stamped` when its arrival times came
    /// from the kernel.
    pub async fn finish(self, stamped: bool) -> ClientLoad {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let cpu = match (self.cpu, cpu_seconds()) {
            (Some((u0, s0)), Some((u1, s1))) => Some(((u1 - u0) / wall, (s1 - s0) / wall)),
            _ => None,
        };
        self.stop.cancel();
        let mut late = self.probe.await.unwrap_or_default();
        late.sort();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let limit = if stamped {
            STAMPED_LATE_LIMIT
        } else {
            CLOCK_LATE_LIMIT
        };
        judge(&late, cpu, cores, limit)
    }
}

/// The figures, and whether they make the level client-limited.
fn judge(
    late_sorted: &[Duration],
    cpu: Option<(f64, f64)>,
    cores: usize,
    limit: Duration,
) -> ClientLoad {
    let at = |q: f64| -> Duration {
        if late_sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((late_sorted.len() - 1) as f64 * q).round() as usize;
        late_sorted[i]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p99, max) = (at(0.99), late_sorted.last().copied().unwrap_or_default());
    let mut why = Vec::new();
    if p99 > limit {
        why.push(format!(
            "the client's event loop ran {:.1} ms late (p99; limit {} ms)",
            ms(p99),
            limit.as_millis()
        ));
    }
    if let Some((total, _)) = cpu.map(|(u, s)| (u + s, s))
        && total >= BUSY_SHARE * cores as f64
    {
        why.push(format!("the client used {total:.2} of its {cores} cores"));
    }
    ClientLoad {
        loop_late_p50_ms: ms(at(0.5)),
        loop_late_p99_ms: ms(p99),
        loop_late_max_ms: ms(max),
        cpu_cores: cpu.map(|(u, s)| u + s),
        cpu_system_cores: cpu.map(|(_, s)| s),
        cores,
        limited: !why.is_empty(),
        why: (!why.is_empty()).then(|| why.join("; ")),
    }
}

/// This process's user and system CPU seconds so far, where the platform says (Linux).
fn cpu_seconds() -> Option<(f64, f64)> {
    cpu_seconds_of("self")
}

/// A process's (`self` or a pid) user and system CPU seconds so far, from `/proc`.
pub fn cpu_seconds_of(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit(')').next()?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime, fields 14 and 15 of stat, are 12 and 13 after the `)`, in clock ticks
    // (100 per second on every Linux platform Rust supports).
    let ticks = |i: usize| f.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? / 100.0, ticks(12)? / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_micros(m * 100)).collect()
    }

    #[test]
    fn a_level_is_client_limited_by_a_late_loop_or_a_busy_cpu_and_says_which() {
        let clock = CLOCK_LATE_LIMIT;
        // 0.1 to 0.5 ms late, 1 of 2 cores: fine.
        let calm = judge(&ms(&[1, 2, 3, 4, 5]), Some((0.8, 0.2)), 2, clock);
        assert!(!calm.limited, "{calm:?}");
        assert_eq!(calm.why, None);
        assert!((calm.loop_late_p99_ms - 0.5).abs() < 1e-9);
        // A loop 3 ms late at p99: past the clock's limit, within the kernel stamps'.
        let late = judge(&ms(&[1, 2, 30, 30, 30]), Some((0.5, 0.1)), 2, clock);
        assert!(late.limited);
        assert!(late.why.unwrap().contains("3.0 ms late (p99; limit 1 ms)"));
        let stamped = judge(
            &ms(&[1, 2, 30, 30, 30]),
            Some((0.5, 0.1)),
            2,
            STAMPED_LATE_LIMIT,
        );
        assert!(!stamped.limited, "{stamped:?}");
        // 1.9 of 2 cores, whatever the time source.
        let busy = judge(&ms(&[1, 1, 1]), Some((1.5, 0.4)), 2, STAMPED_LATE_LIMIT);
        assert!(busy.limited);
        assert!(busy.why.unwrap().contains("1.90 of its 2 cores"));
        // No CPU figures: judged by the loop alone.
        assert!(!judge(&ms(&[1]), None, 2, clock).limited);
    }

    #[tokio::test]
    async fn a_watch_measures_its_level() {
        let w = Watch::start();
        tokio::task::yield_now().await;
        let load = w.finish(true).await;
        assert!(load.cores >= 1);
        assert!(load.loop_late_max_ms >= load.loop_late_p50_ms);
    }
}
