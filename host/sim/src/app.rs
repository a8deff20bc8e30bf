//! The state every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::response::Response;
use http::StatusCode;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::{SimConfig, Timing};
use crate::protocol::json_response;
use crate::scheduler::Submit;
use crate::stats::Stats;

/// Handlers' state: configuration, clock, counters and the batch scheduler's inbox.
#[derive(Clone)]
pub(crate) struct App {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: SimConfig,
    pub timing: Timing,
    pub stats: Arc<Stats>,
    pub clock: Clock,
    pub scheduler: Option<mpsc::UnboundedSender<Submit>>,
    next_seq: AtomicU64,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl App {
    pub(crate) fn new(
        config: SimConfig,
        timing: Timing,
        stats: Arc<Stats>,
        clock: Clock,
        scheduler: Option<mpsc::UnboundedSender<Submit>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                timing,
                stats,
                clock,
                scheduler,
                next_seq: AtomicU64::new(0),
            }),
        }
    }

    /// Counts a generation request and gives it its arrival number.
    pub(crate) fn arrive(&self) -> u64 {
        self.stats.requests_received.fetch_add(1, Relaxed);
        self.next_seq.fetch_add(1, Relaxed)
    }

    /// Counts a refused request and answers it.
    pub(crate) fn reject(&self, status: StatusCode, body: String) -> Response {
        self.stats.requests_rejected.fetch_add(1, Relaxed);
        json_response(status, body)
    }

    /// The context length the servers advertise: the KV budget under the batching model.
    pub(crate) fn max_model_len(&self) -> u64 {
        match self.timing {
            Timing::Batching(p) => p.kv_tokens,
            Timing::Fixed { .. } => 131_072,
        }
    }
}
