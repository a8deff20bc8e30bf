//! `llm-loadtest serve`: the HTTP API a team shares — runs submitted and followed live,
//! one history, results and exports — over the same store the command line uses.
//!
//! The server is one more process on the data directory: it opens the store for each piece
//! of work and closes it (see [`crate::store::journal`]), so `run`, `history` or a second
//! server on the same directory work beside it. Its own opens are queued behind one lock, so
//! its readers take turns in order instead of polling sled's file lock against each other.
//!
//! Runs are the command line's runs: the same settings (as JSON), the same validation, the
//! same engine and recorder. What the service adds is a gate (API keys and roles, in
//! [`auth`] and [`keys`]) and limits (targets, concurrency, run time, in [`guard`]).
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub mod auth;
pub mod error;
pub mod guard;
pub mod jobs;
pub mod keys;
pub mod live;
pub mod reads;
pub mod runs;

use crate::store::{Store, StoreError};

/// Largest request body: a run's settings are a few hundred bytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The server's state.
pub struct Api {
    pub gate: auth::Gate,
    pub limits: guard::Limits,
    pub jobs: Arc<jobs::Jobs>,
    store_turn: tokio::sync::Mutex<()>,
}

impl Api {
    pub fn new(gate: auth::Gate, limits: guard::Limits, jobs: Arc<jobs::Jobs>) -> Api {
        Api {
            gate,
            limits,
            jobs,
            store_turn: tokio::sync::Mutex::new(()),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.jobs.data_dir()
    }

    /// Opens the store for `f`, in turn with the server's other requests.
    pub async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _turn = self.store_turn.lock().await;
        crate::store::with_store(self.data_dir(), f).await
    }
}

/// Every route.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/health", get(live::health))
        .route("/metrics", get(live::metrics))
        .route("/api/v1/benchmark/run", post(runs::submit))
        .route(
            "/api/v1/benchmark/run/{id}",
            get(runs::status).delete(runs::delete),
        )
        .route("/api/v1/benchmark/run/{id}/cancel", post(runs::cancel))
        .route("/api/v1/benchmark/result/{id}", get(reads::result))
        .route("/api/v1/benchmark/history", get(reads::history))
        .route("/api/v1/benchmark/export/{id}", get(reads::export))
        .route("/ws/run/{id}", get(live::ws))
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
    Ok(())
}
