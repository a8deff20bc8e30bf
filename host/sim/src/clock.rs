//! A high-resolution timer shared by every stream.
//!
//! tokio's timer wheel rounds every deadline up to the next whole millisecond, so a token
//! scheduled at t would leave anywhere in [t, t + 1 ms): too coarse for a simulator whose job
//! is to be the exact clock a load tester's timing error is measured against. This clock keeps
//! all pending deadlines in one heap served by one OS thread that sleeps (futex with timeout,
//! about 50 µs of kernel slack) until the earliest, then wakes the tasks that are due. No busy
//! waiting: the thread sleeps whenever nothing is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

struct Entry {
    at: Instant,
    order: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

#[derive(Default)]
struct Pending {
    heap: BinaryHeap<Reverse<Entry>>,
    order: u64,
    shutdown: bool,
    wakeups: u64,
}

struct Shared {
    pending: Mutex<Pending>,
    thread: std::sync::OnceLock<Thread>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves the heap consistent (push/pop are atomic
        // from its point of view), so a poisoned lock is still usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unpark(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

/// A cheap handle to the clock, cloned into every stream.
#[derive(Clone)]
pub(crate) struct Clock {
    shared: Arc<Shared>,
}

/// Owns the clock's thread: dropping it stops the thread and releases every pending sleep.
pub(crate) struct ClockThread {
    clock: Clock,
    join: Option<JoinHandle<()>>,
}

impl ClockThread {
    pub(crate) fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            thread: std::sync::OnceLock::new(),
        });
        let for_thread = Arc::clone(&shared);
        let join = thread::Builder::new()
            .name("sim-clock".into())
            .spawn(move || run(&for_thread))?;
        let _ = shared.thread.set(join.thread().clone());
        // The thread may have parked before its handle was stored; wake it to re-check.
        shared.unpark();
        Ok(Self {
            clock: Clock { shared },
            join: Some(join),
        })
    }

    pub(crate) fn clock(&self) -> Clock {
        self.clock.clone()
    }
}

impl Drop for ClockThread {
    fn drop(&mut self) {
        self.clock.shared.lock().shutdown = true;
        self.clock.shared.unpark();
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

fn run(shared: &Shared) {
    let mut due: Vec<Waker> = Vec::new();
    loop {
        let next = {
            let mut pending = shared.lock();
            let now = Instant::now();
            while pending
                .heap
                .peek()
                .is_some_and(|Reverse(e)| e.at <= now || pending.shutdown)
            {
                if let Some(Reverse(e)) = pending.heap.pop() {
                    due.push(e.waker);
                }
            }
            pending.wakeups += 1;
            if pending.shutdown {
                drop(pending);
                due.drain(..).for_each(Waker::wake);
                return;
            }
            pending.heap.peek().map(|Reverse(e)| e.at)
        };
        due.drain(..).for_each(Waker::wake);
        match next {
            Some(at) => {
                let now = Instant::now();
                if at > now {
                    thread::park_timeout(at - now);
                }
            }
            None => thread::park(),
        }
    }
}

impl Clock {
    /// Completes at `at` (or at once if it has passed, or once the clock has stopped).
    pub(crate) fn sleep_until(&self, at: Instant) -> Sleep<'_> {
        Sleep { clock: self, at }
    }

    /// Completes `d` from now.
    pub(crate) fn sleep(&self, d: Duration) -> Sleep<'_> {
        self.sleep_until(Instant::now() + d)
    }

    /// How many times the clock thread woke up (a CPU cost counter).
    pub(crate) fn wakeups(&self) -> u64 {
        self.shared.lock().wakeups
    }
}

/// The future of [`Clock::sleep_until`].
pub(crate) struct Sleep<'a> {
    clock: &'a Clock,
    at: Instant,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        let shared = &self.clock.shared;
        let mut pending = shared.lock();
        if pending.shutdown {
            return Poll::Ready(());
        }
        let earliest = pending.heap.peek().is_none_or(|Reverse(e)| self.at < e.at);
        pending.order += 1;
        let order = pending.order;
        pending.heap.push(Reverse(Entry {
            at: self.at,
            order,
            waker: cx.waker().clone(),
        }));
        drop(pending);
        // Only a new earliest deadline changes how long the thread must sleep.
        if earliest {
            shared.unpark();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_end_at_their_deadline_in_order() {
        let owner = ClockThread::start().unwrap();
        let clock = owner.clock();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in (1..=20u64).rev() {
            let clock = clock.clone();
            let at = start + Duration::from_millis(2 * i);
            tasks.push(tokio::spawn(async move {
                clock.sleep_until(at).await;
                (at, Instant::now())
            }));
        }
        for t in tasks {
            let (at, woke) = t.await.unwrap();
            assert!(woke >= at, "woke before its deadline");
        }
    }

    #[tokio::test]
    async fn dropping_the_owner_releases_sleepers() {
        let owner = ClockThread::start().unwrap();
        let clock = owner.clock();
        let task = tokio::spawn(async move {
            clock.sleep(Duration::from_secs(3600)).await;
        });
        tokio::task::yield_now().await;
        drop(owner);
        task.await.unwrap();
    }
}
