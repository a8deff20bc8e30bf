//! The store, held open across a burst of requests and let go between bursts.
//!
//! Opening sled costs milliseconds (threads, its snapshot, the recovery scan), and a server
//! that opened it for each request in turn answered about 80 requests a second however many
//! clients waited, one slow export holding up every read behind it (measured with
//! `benches/api_load.rs`). Holding it open for good would lock out every other process on the
//! data directory: `run` registering itself, `history` in a terminal, the server's own runs
//! saving their results, all of which wait for sled's file lock by polling it every 10 ms.
//!
//! So one open serves every request that arrives within [`HOLD`] of it, side by side (sled is
//! safe to share between threads); a request arriving later waits for those to finish, the
//! store is closed, and after [`GAP`] (when requests are waiting: another process polling for
//! the lock gets in within a few windows) it is opened again. With nothing in flight and
//! nothing waiting, the store is closed at once.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::store::{self, SledStore, Store, StoreError};

/// How long one open of the store takes in new requests.
pub const HOLD: Duration = Duration::from_millis(100);
/// Pause after a hold that ran its length while requests waited, so that processes polling
/// for the lock get a turn.
pub const GAP: Duration = Duration::from_millis(30);

#[derive(Default)]
struct State {
    open: Option<(Arc<SledStore>, Instant)>,
    /// Requests using the open store.
    active: usize,
    /// Requests waiting to use it.
    waiting: usize,
    /// One request is opening or closing it; the others wait.
    busy: bool,
}

pub struct HeldStore {
    dir: PathBuf,
    state: Mutex<State>,
    changed: Notify,
}

enum Step {
    Use(Arc<SledStore>),
    Open,
    Close(Arc<SledStore>),
    Wait,
}

impl HeldStore {
    pub fn new(dir: PathBuf) -> HeldStore {
        HeldStore {
            dir,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn step(st: &mut State) -> Step {
        if st.busy {
            return Step::Wait;
        }
        match &st.open {
            Some((s, since)) if since.elapsed() < HOLD => Step::Use(Arc::clone(s)),
            Some((s, _)) if st.active == 0 => Step::Close(Arc::clone(s)),
            Some(_) => Step::Wait,
            None => Step::Open,
        }
    }

    /// Runs `f` on the store, opening it if it is not held.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.acquire().await?;
        let out = tokio::task::spawn_blocking(move || {
            let v = f(store.as_ref())?;
            store.flush()?;
            Ok(v)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        let close = {
            let mut st = self.lock();
            st.active -= 1;
            let idle = st.active == 0 && st.waiting == 0 && !st.busy;
            if idle {
                st.busy = true;
                st.open.take()
            } else {
                None
            }
        };
        if let Some((s, _)) = close {
            self.close(s, false).await;
        }
        self.changed.notify_waiters();
        out
    }

    async fn acquire(&self) -> Result<Arc<SledStore>, StoreError> {
        let mut counted = false;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the state is read: a change after the read still wakes us.
            notified.as_mut().enable();
            let step = {
                let mut st = self.lock();
                let step = Self::step(&mut st);
                match &step {
                    Step::Use(_) => {
                        st.active += 1;
                        if counted {
                            st.waiting -= 1;
                        }
                    }
                    Step::Open | Step::Close(_) => st.busy = true,
                    Step::Wait if !counted => {
                        st.waiting += 1;
                        counted = true;
                    }
                    Step::Wait => {}
                }
                step
            };
            match step {
                Step::Use(s) => return Ok(s),
                Step::Wait => notified.await,
                Step::Close(s) => {
                    self.lock().open = None;
                    self.close(s, true).await;
                    self.changed.notify_waiters();
                }
                Step::Open => {
                    let dir = self.dir.clone();
                    let opened = tokio::task::spawn_blocking(move || store::open(&dir))
                        .await
                        .map_err(|e| StoreError::Task(e.to_string()))
                        .and_then(|r| r);
                    let failed = {
                        let mut st = self.lock();
                        st.busy = false;
                        match opened {
                            Ok(s) => {
                                st.open = Some((Arc::new(s), Instant::now()));
                                None
                            }
                            Err(e) => {
                                if counted {
                                    st.waiting -= 1;
                                }
                                Some(e)
                            }
                        }
                    };
                    self.changed.notify_waiters();
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Closes `store` once every other user has let go; with `gap`, waits before the next
    /// open so that other processes get the lock.
    async fn close(&self, store: Arc<SledStore>, gap: bool) {
        // sled lets go of its lock when its own threads do: dropping blocks on them.
        let _ = tokio::task::spawn_blocking(move || drop(store)).await;
        if gap {
            tokio::time::sleep(GAP).await;
        }
        self.lock().busy = false;
    }
}
