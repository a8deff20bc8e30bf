//! A closure run every interval on its own thread, its readings stamped with seconds since the
//! start. Every reading is taken on that thread (a reader may block, or run its own runtime);
//! [`Periodic::ready`] resolves once the first is taken, so a caller that awaits it before
//! timing anything has a reading before every window, and [`Periodic::stop`] takes one more
//! after everything timed before it: every window between the two is spanned by readings.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

pub struct Periodic<T> {
    t0: Instant,
    stop: mpsc::Sender<()>,
    ready: Option<oneshot::Receiver<()>>,
    thread: JoinHandle<Vec<T>>,
}

impl<T: Send + 'static> Periodic<T> {
    /// Calls `read(seconds since start)` at once and then every `interval` until stopped.
    pub fn start(
        name: &str,
        interval: Duration,
        mut read: impl FnMut(f64) -> T + Send + 'static,
    ) -> std::io::Result<Periodic<T>> {
        let t0 = Instant::now();
        let (stop, stopped) = mpsc::channel::<()>();
        let (first_taken, ready) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut readings = vec![read(t0.elapsed().as_secs_f64())];
                let _ = first_taken.send(());
                let mut next = t0;
                loop {
                    next += interval;
                    let wait = next.saturating_duration_since(Instant::now());
                    let timed_out = matches!(
                        stopped.recv_timeout(wait),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                    readings.push(read(t0.elapsed().as_secs_f64()));
                    // A message or a dropped sender both mean stop.
                    if !timed_out {
                        return readings;
                    }
                }
            })?;
        Ok(Periodic {
            t0,
            stop,
            ready: Some(ready),
            thread,
        })
    }

    /// Resolves once the first reading is taken.
    pub async fn ready(&mut self) {
        if let Some(r) = self.ready.take() {
            // A reader that panicked never sends: nothing to wait for.
            let _ = r.await;
        }
    }

    /// The instant reading times count from.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Stops (after one last reading) and returns every reading.
    pub fn stop(self) -> Vec<T> {
        let _ = self.stop.send(());
        // A panic in the reader loses only the telemetry, never the run.
        self.thread.join().unwrap_or_default()
    }
}

/// Where each level started, in seconds since `t0` (0 for a level that started before it).
pub fn offsets(t0: Instant, starts: &[Instant]) -> Vec<f64> {
    starts
        .iter()
        .map(|s| s.saturating_duration_since(t0).as_secs_f64())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readings_bracket_the_time_between_ready_and_stop() {
        let mut p = Periodic::start("test", Duration::from_millis(1), |t| t).unwrap();
        p.ready().await;
        let inside = p.t0().elapsed().as_secs_f64();
        let readings = p.stop();
        assert!(readings[0] <= inside);
        assert!(readings.len() >= 2);
        assert!(*readings.last().unwrap() >= inside);
        assert!(readings.windows(2).all(|w| w[0] <= w[1]));
    }
}
