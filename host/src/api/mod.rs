//! `llm-loadtest serve`: the HTTP API a team shares — runs submitted and followed live,
//! one history, results and exports — over the same store the command line uses.
//!
//! The server is one more process on the data directory: it holds the store only across a
//! burst of requests (see [`held_store`]), so `run`, `history` or a second server on the same
//! directory work beside it, and its own requests take turns in order instead of polling
//! sled's file lock against each other.
//!
//! Runs are the command line's runs: the same settings (as JSON), the same validation, the
//! same engine and recorder. What the service adds is a gate (API keys and roles, in
//! [`auth`] and [`keys`]) and limits (targets, concurrency, run time, in [`guard`]).
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub mod auth;
pub mod error;
pub mod guard;
pub mod held_store;
pub mod info;
pub mod jobs;
pub mod keys;
pub mod live;
pub mod openapi;
pub mod plugins;
pub mod reads;
pub mod routes;
pub mod runs;
pub mod ui;

use crate::store::{Store, StoreError};

/// How long a stopping server waits for its WebSockets to send their last frames.
const SOCKETS_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Largest request body: a run's settings are a few hundred bytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The server's state.
pub struct Api {
    pub gate: auth::Gate,
    pub limits: guard::Limits,
    pub jobs: Arc<jobs::Jobs>,
    pub plugins: plugins::Plugins,
    store: held_store::HeldStore,
    /// The WebSockets being served: an upgraded connection is no longer the HTTP server's,
    /// so its graceful shutdown does not wait for them; the server's does.
    sockets: tokio_util::task::TaskTracker,
}

impl Api {
    pub fn new(gate: auth::Gate, limits: guard::Limits, jobs: Arc<jobs::Jobs>) -> Api {
        Api {
            gate,
            limits,
            store: held_store::HeldStore::new(jobs.data_dir().to_path_buf()),
            plugins: plugins::Plugins::new(jobs.data_dir()),
            jobs,
            sockets: tokio_util::task::TaskTracker::new(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.store.dir()
    }

    /// Runs `f` on the store, in turn with the server's other requests (see [`held_store`]).
    pub async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.store.with(f).await
    }
}

/// Every route, from the one table the OpenAPI document is made from.
pub fn router(api: Arc<Api>) -> Router {
    routes::table()
        .into_iter()
        .fold(Router::new(), |r, (route, handler)| {
            r.route(route.path, handler)
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
}

/// Serves `api` on `listener` until `shutdown` resolves, then stops its runs (saved as
/// interrupted) and returns once they are saved.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Arc<Api>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let jobs = Arc::clone(&api.jobs);
    let sockets = api.sockets.clone();
    let stopping = Arc::clone(&jobs);
    // Runs are stopped as the server stops taking connections: their ends close the
    // WebSockets that follow them, which the graceful shutdown waits for.
    axum::serve(listener, router(api))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel_all();
        })
        .await?;
    jobs.wait().await;
    // Each socket ends once its run's last frame is sent; one whose client stopped reading
    // is not waited for past a few seconds.
    sockets.close();
    let _ = tokio::time::timeout(SOCKETS_GRACE, sockets.wait()).await;
    Ok(())
}
