//! The epoch ticker that turns the per-call deadline into a trap.
//!
//! It is an OS thread, not a tokio task: a guest spinning on a tokio worker
//! would starve a task-based ticker of the very thread it needs.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

pub(crate) struct EpochTicker {
    tick: Duration,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Tick fast enough that a deadline is kept within ~5 %, but no faster
    /// than 1 ms and no slower than 10 ms.
    pub(crate) fn tick_for(deadline: Duration) -> Duration {
        (deadline / 20).clamp(Duration::from_millis(1), Duration::from_millis(10))
    }

    pub(crate) fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("llm-loadtest-epoch".to_owned())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            tick,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The epoch delta that expires no sooner than `deadline` from now: the
    /// current tick may be nearly over, hence the extra one.
    pub(crate) fn ticks_for(&self, deadline: Duration) -> u64 {
        let ticks = deadline.as_nanos().div_ceil(self.tick.as_nanos().max(1));
        u64::try_from(ticks).unwrap_or(u64::MAX / 2) + 1
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_in_ticks_never_undershoots() {
        let tick = EpochTicker::tick_for(Duration::from_millis(200));
        assert_eq!(tick, Duration::from_millis(10));
        let t = EpochTicker::start(Engine::default(), tick).unwrap();
        assert_eq!(t.ticks_for(Duration::from_millis(200)), 21);
        assert_eq!(t.ticks_for(Duration::from_millis(205)), 22);
        assert_eq!(
            EpochTicker::tick_for(Duration::from_millis(5)),
            Duration::from_millis(1)
        );
    }
}
