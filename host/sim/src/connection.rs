//! The simulator's side of each TCP connection: counted, and optionally closed the way
//! llama.cpp closes it.
//!
//! llama.cpp's server (commit 0c1e570) closes the connection about 0.01 ms after every
//! streamed response while its headers say `Keep-Alive: timeout=5, max=100`; a client that
//! reuses the connection in that window loses its request, which the server never sees. To
//! reproduce that without touching the HTTP layer, the connection watches the bytes it writes:
//! the end of a chunked body (`0\r\n\r\n`, how every streamed response ends over HTTP/1.1)
//! makes the next read see end-of-file, so the server closes the connection as soon as the
//! response is out, with keep-alive still advertised. Whole-body responses keep the
//! connection, as llama.cpp does.
//!
//! A keep-alive idle timeout (uvicorn, vLLM's HTTP server, closes a connection that carried
//! no request for 5 s) needs to know when a connection is between requests, which the bytes
//! alone do not say for a whole-body response. So each connection shares a [`ConnState`]
//! with the requests it carries: a middleware counts a request in flight from its head until
//! its response body is dropped, and wakes the connection's read when the count falls to
//! zero. From then, a read that finds no bytes for the timeout sees end-of-file and hyper
//! closes the connection, as uvicorn does; a request slower than the timeout is never cut.
//! Bytes that come in while nothing is in flight mark a request arriving until the middleware
//! sees it, so a request is never cut between its first byte and its handler either. The
//! timer starts only once a connection has carried a request: a client that connects and
//! writes late on a loaded machine is not what the option reproduces.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

use crate::stats::Stats;
use crate::tls::Transport;

/// The last bytes of a chunked HTTP/1.1 body with no trailers.
const CHUNKED_END: &[u8; 5] = b"0\r\n\r\n";

/// Accepts connections for axum, counting them and wrapping each in a [`SimConnection`].
pub(crate) struct SimListener {
    pub inner: TcpListener,
    /// HTTPS: each connection's handshake runs in its own task (see [`crate::tls`]).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub stats: Arc<Stats>,
    pub close_after_stream: bool,
    /// Close a connection that carries no request for this long.
    pub keep_alive_idle: Option<Duration>,
}

impl axum::serve::Listener for SimListener {
    type Io = SimConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SimConnection, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, addr)) => {
                    // Without TCP_NODELAY a small event written while the previous one awaits
                    // its ACK can sit in the kernel for up to 40 ms (Nagle + delayed ACK).
                    let _ = tcp.set_nodelay(true);
                    self.stats.connections_accepted.fetch_add(1, Relaxed);
                    let open = self.stats.connections_open.fetch_add(1, Relaxed) + 1;
                    self.stats.connections_peak.fetch_max(open, Relaxed);
                    let tcp = match &self.tls {
                        Some(acceptor) => Transport::Handshaking(Box::new(acceptor.accept(tcp))),
                        None => Transport::Plain(tcp),
                    };
                    return (
                        SimConnection {
                            tcp,
                            stats: Arc::clone(&self.stats),
                            close_after_stream: self.close_after_stream,
                            tail: [0; 5],
                            closing: false,
                            state: Arc::new(ConnState::default()),
                            keep_alive_idle: self.keep_alive_idle,
                            idle: None,
                        },
                        addr,
                    );
                }
                // Out of descriptors or another transient failure: back off briefly rather
                // than spin; the connection that failed is the client's to retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One accepted connection.
pub(crate) struct SimConnection {
    tcp: Transport,
    stats: Arc<Stats>,
    close_after_stream: bool,
    /// The last five bytes written, to see a chunked body end.
    tail: [u8; 5],
    /// A streamed response has ended: reads see end-of-file from now on.
    closing: bool,
    /// Shared with the requests this connection carries.
    state: Arc<ConnState>,
    keep_alive_idle: Option<Duration>,
    /// Armed while no request is in flight and no byte has come in since.
    idle: Option<Pin<Box<Sleep>>>,
}

/// What a connection and the requests on it share.
#[derive(Default)]
pub(crate) struct ConnState {
    in_flight: AtomicUsize,
    /// Bytes came in while no request was in flight; cleared when the request is handled.
    arriving: AtomicBool,
    /// The connection has carried a request: the idle timer may run.
    served: AtomicBool,
    /// The connection's read, woken when the last request in flight ends.
    read: AtomicWaker,
}

/// The connection a request came on, for [`track_in_flight`].
#[derive(Clone)]
pub(crate) struct SimPeer(Arc<ConnState>);

impl Connected<IncomingStream<'_, SimListener>> for SimPeer {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        SimPeer(Arc::clone(&stream.io().state))
    }
}

/// Middleware: counts the request in flight on its connection until its response body is
/// dropped (sent whole, or abandoned by a client that went away).
pub(crate) async fn track_in_flight(request: Request, next: Next) -> Response {
    let Some(ConnectInfo(SimPeer(state))) = request.extensions().get().cloned() else {
        return next.run(request).await;
    };
    state.in_flight.fetch_add(1, AcqRel);
    state.arriving.store(false, Release);
    state.served.store(true, Release);
    let guard = InFlight(state);
    let (parts, body) = next.run(request).await.into_parts();
    Response::from_parts(
        parts,
        Body::new(Tracked {
            body,
            _guard: guard,
        }),
    )
}

struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, AcqRel) == 1 {
            self.0.read.wake();
        }
    }
}

/// A response body that holds its request's [`InFlight`] until it is dropped; everything
/// else, the size hint above all (it decides the framing), is the inner body's.
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl SimConnection {
    fn wrote(&mut self, bytes: &[u8]) {
        if !self.close_after_stream || bytes.is_empty() {
            return;
        }
        if bytes.len() >= 5 {
            self.tail.copy_from_slice(&bytes[bytes.len() - 5..]);
        } else {
            self.tail.rotate_left(bytes.len());
            let keep = 5 - bytes.len();
            self.tail[keep..].copy_from_slice(bytes);
        }
        if &self.tail == CHUNKED_END {
            self.closing = true;
        }
    }
}

impl Drop for SimConnection {
    fn drop(&mut self) {
        self.stats.connections_open.fetch_sub(1, Relaxed);
    }
}

impl AsyncRead for SimConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.closing {
            return Poll::Ready(Ok(()));
        }
        let filled = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let Some(timeout) = self.keep_alive_idle else {
            return polled;
        };
        if !matches!(polled, Poll::Pending) {
            // Bytes, end-of-file or an error: not idle.
            if buf.filled().len() > filled && self.state.in_flight.load(Acquire) == 0 {
                self.state.arriving.store(true, Release);
            }
            self.idle = None;
            return polled;
        }
        self.state.read.register(cx.waker());
        let state = &self.state;
        if !state.served.load(Acquire)
            || state.arriving.load(Acquire)
            || state.in_flight.load(Acquire) > 0
        {
            self.idle = None;
            return Poll::Pending;
        }
        let idle = self
            .idle
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        if idle.as_mut().poll(cx).is_ready() {
            self.stats.connections_idle_closed.fetch_add(1, Relaxed);
            self.closing = true;
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl AsyncWrite for SimConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.wrote(&buf[..n]);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            let mut left = n;
            for b in bufs {
                if left == 0 {
                    break;
                }
                let take = left.min(b.len());
                self.wrote(&b[..take]);
                left -= take;
            }
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn a_chunked_end_split_across_writes_is_seen() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (tcp, _) = listener.accept().await.unwrap();
        let _client = client.await.unwrap();
        let mut conn = SimConnection {
            tcp: Transport::Plain(tcp),
            stats: Arc::new(Stats::new()),
            close_after_stream: true,
            tail: [0; 5],
            closing: false,
            state: Arc::new(ConnState::default()),
            keep_alive_idle: None,
            idle: None,
        };
        conn.wrote(b"5\r\nhello\r\n0\r");
        assert!(!conn.closing);
        conn.wrote(b"\n");
        conn.wrote(b"\r\n");
        assert!(conn.closing);
        conn.stats.connections_open.fetch_add(1, Relaxed);
    }
}
