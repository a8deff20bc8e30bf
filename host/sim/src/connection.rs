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

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::stats::Stats;

/// The last bytes of a chunked HTTP/1.1 body with no trailers.
const CHUNKED_END: &[u8; 5] = b"0\r\n\r\n";

/// Accepts connections for axum, counting them and wrapping each in a [`SimConnection`].
pub(crate) struct SimListener {
    pub inner: TcpListener,
    pub stats: Arc<Stats>,
    pub close_after_stream: bool,
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
                    return (
                        SimConnection {
                            tcp,
                            stats: Arc::clone(&self.stats),
                            close_after_stream: self.close_after_stream,
                            tail: [0; 5],
                            closing: false,
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
    tcp: TcpStream,
    stats: Arc<Stats>,
    close_after_stream: bool,
    /// The last five bytes written, to see a chunked body end.
    tail: [u8; 5],
    /// A streamed response has ended: reads see end-of-file from now on.
    closing: bool,
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
        Pin::new(&mut self.tcp).poll_read(cx, buf)
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

    #[tokio::test]
    async fn a_chunked_end_split_across_writes_is_seen() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (tcp, _) = listener.accept().await.unwrap();
        let _client = client.await.unwrap();
        let mut conn = SimConnection {
            tcp,
            stats: Arc::new(Stats::new()),
            close_after_stream: true,
            tail: [0; 5],
            closing: false,
        };
        conn.wrote(b"5\r\nhello\r\n0\r");
        assert!(!conn.closing);
        conn.wrote(b"\n");
        conn.wrote(b"\r\n");
        assert!(conn.closing);
        conn.stats.connections_open.fetch_add(1, Relaxed);
    }
}
