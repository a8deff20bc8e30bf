//! A connection's socket, and when its bytes arrived.
//!
//! On Linux a plain TCP socket is asked for receive timestamps (`SO_TIMESTAMPNS`): the kernel
//! stamps each segment as the network stack takes it in, and `recvmsg` hands the stamp of the
//! newest segment read beside the bytes. That time does not move when the client is late to
//! read — a busy event loop, a starved core — which the clock read after the read does. The
//! stamp is on the realtime clock; it is carried onto the monotonic clock the rest of the
//! timing uses through the two clocks read together at the read, so a stamp is off by at most
//! the microseconds between those two reads (and by any step of the realtime clock between
//! the packet and the read, which is why a stamp more than [`MAX_AGE`] old, or in the future,
//! is not used). Elsewhere, and over TLS (rustls reads the socket itself), the time is the
//! clock read when the read returns, as it is for a read that came unstamped (Linux turns
//! stamping on for the whole stack a moment after the first socket asks, so a run's first
//! reads may be). Each read counts its source, and a run records which it used.
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A kernel stamp older than this at its read is not trusted (the realtime clock stepped).
const MAX_AGE: Duration = Duration::from_secs(10);

/// Where an arrival time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The kernel's receive timestamp of the newest segment read.
    Kernel,
    /// The monotonic clock read when the read returned.
    Clock,
}

/// A connection's transport.
pub enum Io {
    Plain { stream: TcpStream, stamped: bool },
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Io {
    /// A plain TCP connection, asking the kernel for receive timestamps (when `stamps`)
    /// where it can.
    pub fn plain(stream: TcpStream, stamps: bool) -> Io {
        let stamped = stamps && stamp::enable(&stream);
        Io::Plain { stream, stamped }
    }

    pub fn tls(stream: tokio_rustls::client::TlsStream<TcpStream>) -> Io {
        Io::Tls(Box::new(stream))
    }

    pub fn time_source(&self) -> TimeSource {
        match self {
            Io::Plain { stamped: true, .. } => TimeSource::Kernel,
            _ => TimeSource::Clock,
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Plain { stream, .. } => stream.write_all(bytes).await,
            Io::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Reads what has arrived into `buf`'s spare room, waiting for at least a byte: how many
    /// bytes (0 at the end of the stream), when they arrived, and where that time came from.
    pub async fn read_buf(
        &mut self,
        buf: &mut BytesMut,
    ) -> std::io::Result<(usize, Instant, TimeSource)> {
        match self {
            Io::Plain {
                stream,
                stamped: true,
            } => loop {
                stream.readable().await?;
                match stream.try_io(tokio::io::Interest::READABLE, || stamp::recv(stream, buf)) {
                    Ok((n, Some(at))) => return Ok((n, at, TimeSource::Kernel)),
                    Ok((n, None)) => return Ok((n, Instant::now(), TimeSource::Clock)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            },
            Io::Plain { stream, .. } => {
                let n = stream.read_buf(buf).await?;
                Ok((n, Instant::now(), TimeSource::Clock))
            }
            Io::Tls(s) => {
                let n = s.read_buf(buf).await?;
                Ok((n, Instant::now(), TimeSource::Clock))
            }
        }
    }

    /// Whether the server has closed the connection (or it is unusable), without waiting.
    pub fn closed_now(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match self {
            Io::Plain { stream, .. } => match stream.try_read(&mut probe) {
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                // The end of the stream, or bytes nobody asked for.
                Ok(_) => true,
            },
            Io::Tls(s) => {
                use futures::FutureExt as _;
                // Anything ready (an alert, the end, bytes) means it cannot carry a request.
                s.read(&mut probe).now_or_never().is_some()
            }
        }
    }
}

/// The kernel's clock carried onto the monotonic one: `stamp` (realtime) as an `Instant`,
/// given both clocks read together just after.
fn to_instant(stamp: SystemTime, now: Instant, now_real: SystemTime) -> Option<Instant> {
    let age = now_real.duration_since(stamp).ok()?;
    if age > MAX_AGE {
        return None;
    }
    now.checked_sub(age)
}

#[cfg(target_os = "linux")]
mod stamp {
    //! `SO_TIMESTAMPNS` and `recvmsg` through nix (no unsafe code here).
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use bytes::BytesMut;
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
    use tokio::net::TcpStream;

    /// Room of one read: every byte that has arrived is taken at once at the rates an LLM
    /// stream reaches. One per thread (reads do not wait inside), not one per connection.
    const ROOM: usize = 64 * 1024;

    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; ROOM]);
    }

    pub fn enable(stream: &TcpStream) -> bool {
        setsockopt(stream, sockopt::ReceiveTimestampns, &true).is_ok()
    }

    /// One non-blocking `recvmsg`: the bytes appended to `buf`, and the arrival time from the
    /// kernel's stamp when it came with them.
    pub fn recv(
        stream: &TcpStream,
        buf: &mut BytesMut,
    ) -> std::io::Result<(usize, Option<Instant>)> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
            let (n, stamp) = {
                let mut iov = [IoSliceMut::new(&mut scratch[..])];
                let msg = recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_DONTWAIT,
                )
                .map_err(std::io::Error::from)?;
                let mut stamp = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmTimestampns(ts) = c {
                            stamp = Some(
                                UNIX_EPOCH
                                    + Duration::new(
                                        u64::try_from(ts.tv_sec()).unwrap_or(0),
                                        u32::try_from(ts.tv_nsec()).unwrap_or(0),
                                    ),
                            );
                        }
                    }
                }
                (msg.bytes, stamp)
            };
            let (now, now_real) = (Instant::now(), SystemTime::now());
            buf.extend_from_slice(&scratch[..n]);
            Ok((n, stamp.and_then(|s| super::to_instant(s, now, now_real))))
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod stamp {
    use std::time::Instant;

    use bytes::BytesMut;
    use tokio::net::TcpStream;

    pub fn enable(_: &TcpStream) -> bool {
        false
    }

    pub fn recv(_: &TcpStream, _: &mut BytesMut) -> std::io::Result<(usize, Option<Instant>)> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair on loopback: our side as `Io`, the server's as a stream.
    async fn pair(stamps: bool) -> (Io, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Io::plain(client, stamps), server)
    }

    /// Writes `bytes` from the server, waits until they are in our receive queue (a peek
    /// returns them), notes the time, then reads: the read's time against that instant.
    async fn arrival_vs_known(
        io: &mut Io,
        server: &mut TcpStream,
    ) -> (Instant, Instant, usize, TimeSource) {
        server.write_all(b"data: 1\n\n").await.unwrap();
        if let Io::Plain { stream, .. } = io {
            stream.peek(&mut [0u8; 1]).await.unwrap();
        }
        let known = Instant::now();
        let mut buf = BytesMut::with_capacity(64);
        let (n, at, source) = io.read_buf(&mut buf).await.unwrap();
        (at, known, n, source)
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_kernel_stamp_is_when_the_bytes_arrived_not_when_they_were_read() {
        let (mut io, mut server) = pair(true).await;
        assert_eq!(io.time_source(), TimeSource::Kernel);
        // Linux turns stamping on for the whole stack a moment after the first socket asks
        // (a deferred static key), so the first segments may come unstamped: those reads
        // fall back to the clock and say so. Every stamped read must be no later than known.
        for _ in 0..1000 {
            let (at, known, n, source) = arrival_vs_known(&mut io, &mut server).await;
            assert_eq!(n, 9);
            match source {
                TimeSource::Kernel => {
                    assert!(at <= known, "stamped {:?} after it was known", at - known);
                    return;
                }
                TimeSource::Clock => assert!(at >= known),
            }
            tokio::task::yield_now().await;
        }
        panic!("no read of 1,000 came with a kernel stamp");
    }

    #[tokio::test]
    async fn the_clock_is_read_after_the_read() {
        let (mut io, mut server) = pair(false).await;
        assert_eq!(io.time_source(), TimeSource::Clock);
        let (at, known, n, source) = arrival_vs_known(&mut io, &mut server).await;
        assert_eq!((n, source), (9, TimeSource::Clock));
        assert!(at >= known);
    }

    #[tokio::test]
    async fn a_closed_idle_connection_is_seen_without_waiting() {
        let (mut io, server) = pair(true).await;
        assert!(!io.closed_now());
        drop(server);
        // The close reaches our side before a read would see it; wait for that, not a time.
        if let Io::Plain { stream, .. } = &io {
            stream.readable().await.unwrap();
        }
        assert!(io.closed_now());
    }

    #[test]
    fn a_kernel_stamp_becomes_an_earlier_instant_unless_it_is_implausible() {
        let now = Instant::now();
        let real = SystemTime::now();
        let ms = Duration::from_millis(3);
        assert_eq!(to_instant(real - ms, now, real), now.checked_sub(ms));
        // In the future (the realtime clock stepped back) or too old: not used.
        assert_eq!(to_instant(real + ms, now, real), None);
        assert_eq!(to_instant(real - MAX_AGE * 2, now, real), None);
    }
}
