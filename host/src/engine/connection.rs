//! The run's connections: at most one per request in flight, reused most-recent first, and
//! never the reason a request fails.
//!
//! Why not hyper-util's pooled client: it opens a new socket whenever a response is still
//! being wound down when the next request starts (8 sockets for 4 streams against vLLM),
//! keeps idle sockets 90 s while uvicorn drops them after 5 s, and retries only requests
//! whose bytes never left. llama.cpp closes the connection right after every streamed
//! response while advertising keep-alive; a request written onto that socket in the
//! microseconds before the close is seen dies with no response byte, and the server never saw
//! it. So this pool owns the policy:
//! - a lease per request; the connection goes back only after a clean end of its response;
//! - before reuse, a connection the server closed, or one idle longer than
//!   [`IDLE_TIMEOUT`] (below uvicorn's 5 s keep-alive), is dropped;
//! - a request that fails before any response byte on a reused connection is sent once more on
//!   a fresh one and counted as a retry, so a server's keep-alive policy never shows as a
//!   failed request; the same failure on a fresh connection is a `send` error;
//! - a server whose reused connections have died unanswered [`LEARN_AFTER`] times and never
//!   answered once is taken to close after every response: from then on each request gets a
//!   fresh connection, so the retry's extra round trip stops landing in TTFT.
//!
//! The connections themselves are [`super::h1::Conn`]s, read by the task of the request they
//! carry (see there for why not hyper's connection tasks); an idle one is checked for the
//! server's close with a read that does not wait.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Uri};

use super::Target;
use super::h1::{Conn, H1Error, Head, Io};
use super::tls::TlsError;
use crate::metrics::ConnectionUse;

/// A connection idle this long is not reused: below the 5 s keep-alive of uvicorn (vLLM,
/// SGLang) and llama.cpp, so the server never closes it under a request we are sending.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// How long a connection may take to open before the request is a `connect` error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reused connections that must die unanswered, with none answering, before the pool stops
/// reusing connections to this server.
pub const LEARN_AFTER: u64 = 2;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made.
    #[error("could not connect to {authority}: {reason}")]
    Connect { authority: String, reason: String },
    /// The request was written but the connection closed (or failed) before any response.
    #[error("{authority} closed the connection before answering: {reason}")]
    Send { authority: String, reason: String },
    /// An answer came, but its head is not HTTP/1.1 the client can read (too large, garbled).
    #[error("{authority} answered with a response head that cannot be read: {reason}")]
    Malformed { authority: String, reason: String },
}

/// A connection lent to one request. Drop it to close the connection; give it back with
/// [`ConnectionPool::give_back`] once its response has ended cleanly.
pub struct Lease {
    pub conn: Conn,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Connections to one server (`host:port`).
pub struct ConnectionPool {
    authority: String,
    /// `https://`: the configuration and the name asked for by SNI and checked.
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    idle: Mutex<VecDeque<Idle>>,
    /// Ask plain-TCP connections for the kernel's receive timestamps.
    kernel_timestamps: bool,
    /// Reused connections that answered, and that died unanswered.
    reuse_answered: AtomicU64,
    reuse_died: AtomicU64,
    /// Reads timed by the kernel's receive timestamps, and by the clock.
    reads_kernel: AtomicU64,
    reads_clock: AtomicU64,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl ConnectionPool {
    /// A pool for `target`'s server, over TLS for `https://`.
    pub fn new(target: &Target, kernel_timestamps: bool) -> Result<Self, TlsError> {
        let authority = target.authority();
        let tls = match target.tls() {
            Some(config) => Some((
                tokio_rustls::TlsConnector::from(config.clone()),
                super::tls::server_name(authority)?,
            )),
            None => None,
        };
        Ok(Self {
            authority: target.host_port(),
            tls,
            idle: Mutex::new(VecDeque::new()),
            kernel_timestamps,
            reuse_answered: AtomicU64::new(0),
            reuse_died: AtomicU64::new(0),
            reads_kernel: AtomicU64::new(0),
            reads_clock: AtomicU64::new(0),
        })
    }

    /// Whether this server has been seen to close every connection after one response.
    pub fn closes_after_each_response(&self) -> bool {
        self.reuse_answered.load(Relaxed) == 0 && self.reuse_died.load(Relaxed) >= LEARN_AFTER
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        // The queue is consistent between any two statements: a poisoned lock is still usable.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a connection's reads by where their times came from.
    pub fn count_reads(&self, conn: &mut Conn) {
        let (kernel, clock) = conn.take_read_counts();
        self.reads_kernel.fetch_add(kernel, Relaxed);
        self.reads_clock.fetch_add(clock, Relaxed);
    }

    /// Reads whose arrival time came from the kernel, and from the clock, so far.
    pub fn read_counts(&self) -> (u64, u64) {
        (
            self.reads_kernel.load(Relaxed),
            self.reads_clock.load(Relaxed),
        )
    }

    /// Sends `request` (an absolute URI on this pool's server) and returns the response head
    /// with the connection it came on, whose body is read from it.
    pub async fn send(
        &self,
        request: Request<Bytes>,
        used: &mut ConnectionUse,
    ) -> Result<(Head, Lease), SendError> {
        let request = self.origin_form(request);
        let mut lease = self.checkout(used).await?;
        if !used.reused {
            return self.send_fresh(lease, &request).await;
        }
        match lease.conn.exchange(&request).await {
            Ok(head) => {
                self.reuse_answered.fetch_add(1, Relaxed);
                Ok((head, lease))
            }
            Err(H1Error::Unanswered(reason)) => {
                self.reuse_died.fetch_add(1, Relaxed);
                tracing::debug!(
                    server = %self.authority,
                    error = %reason,
                    "a reused connection closed before answering; sending again on a fresh one"
                );
                self.count_reads(&mut lease.conn);
                drop(lease);
                used.retries += 1;
                let fresh = self.open(used).await?;
                self.send_fresh(fresh, &request).await
            }
            Err(e) => Err(self.send_error(e)),
        }
    }

    /// Sends on a connection no earlier request used: any failure is the request's own.
    async fn send_fresh(
        &self,
        mut lease: Lease,
        request: &Request<Bytes>,
    ) -> Result<(Head, Lease), SendError> {
        match lease.conn.exchange(request).await {
            Ok(head) => Ok((head, lease)),
            Err(e) => Err(self.send_error(e)),
        }
    }

    /// Takes back a connection whose response `head` was read to its end.
    pub fn give_back(&self, mut lease: Lease, head: &Head) {
        self.count_reads(&mut lease.conn);
        if !Conn::reusable_after(head) || self.closes_after_each_response() {
            return;
        }
        self.lock().push_back(Idle {
            conn: lease.conn,
            since: Instant::now(),
        });
    }

    async fn checkout(&self, used: &mut ConnectionUse) -> Result<Lease, SendError> {
        loop {
            // Most recent first: the freshest connection is the least likely to be closed.
            let Some(idle) = self.lock().pop_back() else {
                return self.open(used).await;
            };
            let Idle { mut conn, since } = idle;
            if since.elapsed() >= IDLE_TIMEOUT || conn.closed_while_idle() {
                used.stale += 1;
                continue;
            }
            used.reused = true;
            return Ok(Lease { conn });
        }
    }

    async fn open(&self, used: &mut ConnectionUse) -> Result<Lease, SendError> {
        used.opened += 1;
        let connect_error = |reason: String| SendError::Connect {
            authority: self.authority.clone(),
            reason,
        };
        let started = Instant::now();
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(&self.authority),
        )
        .await
        .map_err(|_| connect_error(format!("no connection within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| connect_error(e.to_string()))?;
        used.connect_us = Some(micros(started.elapsed()));
        // Without TCP_NODELAY a small request can wait for a delayed ACK (40 ms).
        tcp.set_nodelay(true)
            .map_err(|e| connect_error(e.to_string()))?;
        let io = match &self.tls {
            None => Io::plain(tcp, self.kernel_timestamps),
            Some((connector, name)) => {
                let started = Instant::now();
                let stream =
                    tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
                        .await
                        .map_err(|_| {
                            connect_error(format!("no TLS handshake within {CONNECT_TIMEOUT:?}"))
                        })?
                        .map_err(|e| connect_error(format!("TLS handshake failed: {e}")))?;
                used.tls_handshake_us = Some(micros(started.elapsed()));
                Io::tls(stream)
            }
        };
        Ok(Lease {
            conn: Conn::new(io),
        })
    }

    fn send_error(&self, e: H1Error) -> SendError {
        let authority = self.authority.clone();
        match e {
            H1Error::Malformed(reason) => SendError::Malformed { authority, reason },
            H1Error::Unanswered(reason) | H1Error::Body(reason) => {
                SendError::Send { authority, reason }
            }
        }
    }

    /// HTTP/1.1 servers are asked for the path, with the server named in `Host`.
    fn origin_form(&self, mut request: Request<Bytes>) -> Request<Bytes> {
        if !request.headers().contains_key(http::header::HOST)
            && let Some(host) = request.uri().authority()
            && let Ok(value) = HeaderValue::from_str(host.as_str())
        {
            request.headers_mut().insert(http::header::HOST, value);
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        if let Ok(uri) = path.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
        request
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// An error and its causes, as one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
