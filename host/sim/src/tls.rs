//! HTTPS for the simulator (`--tls-cert`, `--tls-key`), so a client's TLS path is tested
//! against a local server with certificates made by the test.
//!
//! The handshake runs inside the connection's own task, on its first read or write, not in
//! the accept loop: one client slow to handshake (or one that never does) would otherwise hold
//! up every connection behind it.
use std::future::Future as _;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::SimError;

/// Reads a PEM certificate chain and its private key into an acceptor for HTTP/1.1.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, SimError> {
    let bad = |path: &Path, e: &dyn std::fmt::Display| {
        SimError::Config(format!("TLS file {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| SimError::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| bad(cert, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A connection's bytes: plain TCP, or TLS once its handshake is done.
pub(crate) enum Transport {
    Plain(TcpStream),
    Handshaking(Box<tokio_rustls::Accept<TcpStream>>),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// The byte stream under a connection, whichever it is.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Transport {
    /// Drives the handshake, then lends the stream bytes flow on.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut dyn Io>> {
        if let Transport::Handshaking(accept) = self {
            let stream = ready!(Pin::new(&mut **accept).poll(cx))?;
            *self = Transport::Tls(Box::new(stream));
        }
        Poll::Ready(match self {
            Transport::Plain(t) => Ok(t),
            Transport::Tls(t) => Ok(&mut **t),
            Transport::Handshaking(_) => Err(io::Error::other("TLS handshake unfinished")),
        })
    }

    pub(crate) fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(t) => t.is_write_vectored(),
            Transport::Tls(t) => t.is_write_vectored(),
            Transport::Handshaking(_) => false,
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let io = ready!(self.poll_io(cx))?;
        Pin::new(io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let io = ready!(self.poll_io(cx))?;
        Pin::new(io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let io = ready!(self.poll_io(cx))?;
        Pin::new(io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        Transport::is_write_vectored(self)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = ready!(self.poll_io(cx))?;
        Pin::new(io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = ready!(self.poll_io(cx))?;
        Pin::new(io).poll_shutdown(cx)
    }
}
