//! Starting, observing and stopping the simulator's HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::connection::{SimListener, SimPeer, track_in_flight};
use axum::Router;
use axum::routing::{get, post};
use http::StatusCode;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::clock::{Clock, ClockThread};
use crate::config::{SimConfig, Timing};
use crate::protocol::{ollama, openai, tgi, tokenize, triton, vllm};
use crate::stats::{Stats, StatsSnapshot};
use crate::{SimError, scheduler};

/// Every route, on one port.
fn router(app: App) -> Router {
    Router::new()
        .route("/v1/completions", post(openai::completions))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/models", get(openai::models))
        // vLLM, SGLang, llama.cpp and TGI each own POST /tokenize; the body says which.
        .route("/tokenize", post(tokenize::tokenize))
        .route("/metrics", get(vllm::metrics))
        .route("/version", get(vllm::version))
        .route("/health", get(vllm::health))
        // SGLang and TGI both own POST /generate; the handler tells them apart by the body.
        .route("/generate", post(tgi::generate_or_sglang))
        .route("/generate_stream", post(tgi::generate_stream))
        .route("/info", get(tgi::info))
        .route("/api/generate", post(ollama::generate))
        .route("/api/chat", post(ollama::chat))
        .route("/api/tags", get(ollama::tags))
        .route("/api/version", get(ollama::version))
        .route("/v2/models/{model}/generate", post(triton::generate))
        .route(
            "/v2/models/{model}/generate_stream",
            post(triton::generate_stream),
        )
        .route("/v2/health/ready", get(triton::ready))
        .route("/v2/health/live", get(triton::ready))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(track_in_flight))
        .with_state(app)
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "Not Found")
}

/// Starts serving on `listener` in the background and returns at once.
///
/// Fails if the configuration is inconsistent (see [`SimConfig::timing`]) or the clock thread
/// cannot be started. Must be called inside a tokio runtime.
pub async fn start(
    config: SimConfig,
    listener: tokio::net::TcpListener,
) -> Result<SimHandle, SimError> {
    let timing = config.timing()?;
    let local_addr = listener.local_addr().map_err(SimError::LocalAddr)?;
    let clock_thread = ClockThread::start().map_err(SimError::Thread)?;
    let clock = clock_thread.clock();
    let stats = Arc::new(Stats::new());
    let (inbox, scheduler_task) = match timing {
        Timing::Batching(params) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(scheduler::run(
                params,
                rx,
                clock.clone(),
                Arc::clone(&stats),
            ));
            (Some(tx), Some(task))
        }
        Timing::Fixed { .. } => (None, None),
    };
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(SimError::Config(
                "--tls-cert and --tls-key go together".to_owned(),
            ));
        }
    };
    let listener = SimListener {
        inner: listener,
        tls,
        stats: Arc::clone(&stats),
        close_after_stream: config.close_after_stream,
        keep_alive_idle: config.keep_alive_idle,
    };
    let app = App::new(config, timing, Arc::clone(&stats), clock.clone(), inbox);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            router(app).into_make_service_with_connect_info::<SimPeer>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await;
        if let Some(task) = scheduler_task {
            task.abort();
        }
        drop(clock_thread);
        served
    });
    Ok(SimHandle {
        local_addr,
        stats,
        clock,
        stop: Some(stop_tx),
        server: Some(server),
    })
}

/// A running simulator. Dropping it stops the server abruptly; [`SimHandle::shutdown`] stops
/// it gracefully.
pub struct SimHandle {
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// The address the simulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.stats.snapshot();
        s.timer_wakeups = self.clock.wakeups();
        s
    }

    /// Stops accepting connections, lets the responses in flight finish, and waits for that.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => match server.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(SimError::Serve(e)),
                Err(e) => Err(SimError::Task(e.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
