//! HTTP/1.1 on the hot path: a connection is written and read by the task of the request it
//! carries, as much as has arrived in one read, with the arrival time taken at that read.
//!
//! Why not hyper here: hyper's client drives each connection in a task of its own and passes
//! body frames to the request's task through a channel, so every frame costs a second task's
//! wake-up and a hop; it reads into buffers it sizes; and it hides the socket, so an arrival
//! time could only be the clock read after the frame crossed tasks. Here the request's task
//! reads the socket itself and timestamps each read where it happens (from the kernel where
//! the platform gives it, see [`socket`]). What is spoken is what LLM servers speak: a request
//! with a `Content-Length` body; a response whose body is `Content-Length`, chunked, or ended
//! by the close; `100 Continue` skipped; no pipelining, no upgrades. hyper stays for the
//! requests off the hot path (pre-flight, `/tokenize`, `/metrics`, `info`), where a hop costs
//! nothing that is measured.
pub mod chunked;
pub mod socket;

use std::time::Instant;

use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request};

use chunked::{ChunkError, Chunked};
pub use socket::{Io, TimeSource};

/// Largest response head read: hyper's default limit, which the hostile-server tests were
/// written against.
pub const MAX_HEAD: usize = 400 * 1024;

/// Headers a response head may have.
const MAX_HEADERS: usize = 100;

/// Room each read is given where the socket is read into the connection's own buffer (TLS,
/// no kernel stamps): every byte that has arrived is taken at once at the rates an LLM stream
/// reaches. Stamped reads go through a per-thread buffer instead (see [`socket`]).
const READ_ROOM: usize = 16 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// The connection failed or closed before any response head: the server may never have
    /// seen the request.
    #[error("{0}")]
    Unanswered(String),
    /// A response came whose head cannot be read.
    #[error("{0}")]
    Malformed(String),
    /// The body broke off or is malformed.
    #[error("{0}")]
    Body(String),
}

/// A response head.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: HeaderMap,
    framing: Framing,
    /// The server keeps the connection open after this response.
    keep_alive: bool,
    /// When the read that completed the head arrived.
    pub at: Instant,
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunked),
    /// The body ends when the server closes.
    Close,
}

/// One connection to a server.
pub struct Conn {
    io: Io,
    /// Bytes read and not yet used.
    buf: BytesMut,
    /// When the bytes now in `buf` arrived.
    last_at: Instant,
    /// The current response's body, decoded, for the caller to borrow.
    data: Vec<u8>,
    /// Reads whose time came from the kernel, and from the clock, not yet counted by the
    /// pool.
    reads: (u64, u64),
}

impl Conn {
    pub fn new(io: Io) -> Conn {
        Conn {
            io,
            buf: BytesMut::with_capacity(4096),
            last_at: Instant::now(),
            data: Vec::new(),
            reads: (0, 0),
        }
    }

    /// When the latest read arrived.
    pub fn last_arrival(&self) -> Instant {
        self.last_at
    }

    /// Reads timed by the kernel and by the clock since the last call.
    pub fn take_read_counts(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.reads)
    }

    /// Whether the server has closed this idle connection (or sent bytes nobody asked for,
    /// which makes it unusable too). Does not wait.
    pub fn closed_while_idle(&mut self) -> bool {
        !self.buf.is_empty() || self.io.closed_now()
    }

    /// Reads what has arrived (waiting for at least one byte). `Ok(false)` at the end.
    async fn read_more(&mut self) -> std::io::Result<bool> {
        self.buf.reserve(READ_ROOM);
        let (n, at, source) = self.io.read_buf(&mut self.buf).await?;
        self.last_at = at;
        // The end of the stream carries no stamp and times no byte.
        match source {
            _ if n == 0 => {}
            TimeSource::Kernel => self.reads.0 += 1,
            TimeSource::Clock => self.reads.1 += 1,
        }
        Ok(n > 0)
    }

    /// Writes `request` (origin-form URI, `Host` set) with its body, and reads the response
    /// head.
    pub async fn exchange(&mut self, request: &Request<bytes::Bytes>) -> Result<Head, H1Error> {
        let wire = encode(request);
        self.io
            .write_all(&wire)
            .await
            .map_err(|e| H1Error::Unanswered(e.to_string()))?;
        loop {
            let head = self.read_head().await?;
            // 100 Continue (and other 1xx but 101): the real answer follows.
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            return Ok(head);
        }
    }

    async fn read_head(&mut self) -> Result<Head, H1Error> {
        loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => {
                        let head = head_of(&resp, self.last_at)?;
                        self.buf.advance(len);
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => {
                        return Err(H1Error::Malformed(format!("invalid response head: {e}")));
                    }
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(H1Error::Malformed("message head is too large".into()));
                }
            }
            match self.read_more().await {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() => {
                    return Err(H1Error::Unanswered(
                        "the connection closed before a response".into(),
                    ));
                }
                Ok(false) => {
                    return Err(H1Error::Unanswered(
                        "the connection closed inside the response head".into(),
                    ));
                }
                Err(e) => return Err(H1Error::Unanswered(e.to_string())),
            }
        }
    }

    /// The next part of `head`'s body that has arrived, decoded, with the arrival time of the
    /// read that brought it; `None` at the body's end. Cancel-safe only between calls.
    pub async fn body_part(
        &mut self,
        head: &mut Head,
    ) -> Option<Result<(&[u8], Instant), H1Error>> {
        self.data.clear();
        loop {
            // First what is already here, then what a read brings.
            if !self.buf.is_empty() {
                let at = self.last_at;
                match &mut head.framing {
                    Framing::Length(0) => return None,
                    Framing::Length(left) => {
                        let take = usize::try_from(*left)
                            .unwrap_or(usize::MAX)
                            .min(self.buf.len());
                        self.data.extend_from_slice(&self.buf[..take]);
                        self.buf.advance(take);
                        *left -= take as u64;
                    }
                    Framing::Chunked(c) => {
                        if c.is_done() {
                            return None;
                        }
                        match c.decode(&self.buf, &mut self.data) {
                            Ok(n) => self.buf.advance(n),
                            Err(e) => return Some(Err(H1Error::Body(chunk_error(&e)))),
                        }
                    }
                    Framing::Close => {
                        self.data.extend_from_slice(&self.buf);
                        self.buf.clear();
                    }
                }
                if !self.data.is_empty() {
                    return Some(Ok((&self.data, at)));
                }
            }
            match &head.framing {
                Framing::Length(0) => return None,
                Framing::Chunked(c) if c.is_done() => return None,
                _ => {}
            }
            match self.read_more().await {
                Ok(true) => {}
                Ok(false) => {
                    return match head.framing {
                        Framing::Close => None,
                        _ => Some(Err(H1Error::Body(
                            "the server closed the connection before the body ended".into(),
                        ))),
                    };
                }
                Err(e) => return Some(Err(H1Error::Body(e.to_string()))),
            }
        }
    }

    /// Whether this connection can carry another request once `head`'s body has been read to
    /// its end.
    pub fn reusable_after(head: &Head) -> bool {
        head.keep_alive && !matches!(head.framing, Framing::Close)
    }
}

/// What a run's arrival times came from, given its reads timed by the kernel and by the
/// clock; `None` when it read nothing.
pub fn describe_sources((kernel, clock): (u64, u64)) -> Option<String> {
    let total = kernel + clock;
    match (kernel, clock) {
        (0, 0) => None,
        (_, 0) => Some("kernel receive timestamps (SO_TIMESTAMPNS)".into()),
        (0, _) => Some("the clock read after each read".into()),
        _ => Some(format!(
            "kernel receive timestamps for {:.1} % of reads, the clock after the read for \
             the rest",
            kernel as f64 * 100.0 / total as f64
        )),
    }
}

fn chunk_error(e: &ChunkError) -> String {
    format!("error decoding the chunked body: {e}")
}

/// The head httparse read, with what the body's framing and the connection's reuse need.
fn head_of(resp: &httparse::Response<'_, '_>, at: Instant) -> Result<Head, H1Error> {
    let status = resp.code.unwrap_or(0);
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|e| H1Error::Malformed(format!("invalid header name {:?}: {e}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|e| H1Error::Malformed(format!("invalid value of {}: {e}", h.name)))?;
        headers.append(name, value);
    }
    let has = |name: &str, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let http11 = resp.version == Some(1);
    let keep_alive = if http11 {
        !has("connection", "close")
    } else {
        has("connection", "keep-alive")
    };
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if has("transfer-encoding", "chunked") {
        Framing::Chunked(Chunked::default())
    } else if let Some(v) = headers.get(http::header::CONTENT_LENGTH) {
        let n = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| H1Error::Malformed(format!("invalid content-length {v:?}")))?;
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Head {
        status,
        headers,
        framing,
        keep_alive,
        at,
    })
}

/// The request as bytes: request line, headers, `Content-Length`, body — one write.
fn encode(request: &Request<bytes::Bytes>) -> Vec<u8> {
    let body = request.body();
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        if name == http::header::CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || request.method() == http::Method::POST {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Head, H1Error> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        assert!(resp.parse(text.as_bytes()).unwrap().is_complete());
        head_of(&resp, Instant::now())
    }

    #[test]
    fn the_body_framing_and_reuse_follow_the_head() {
        let chunked = parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").unwrap();
        assert!(matches!(chunked.framing, Framing::Chunked(_)));
        assert!(Conn::reusable_after(&chunked));
        let closing =
            parse("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 3\r\n\r\n").unwrap();
        assert!(matches!(closing.framing, Framing::Length(3)));
        assert!(!Conn::reusable_after(&closing));
        let old = parse("HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n").unwrap();
        assert!(matches!(old.framing, Framing::Close));
        assert!(!Conn::reusable_after(&old));
        assert!(matches!(
            parse("HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n"),
            Err(H1Error::Malformed(_))
        ));
        let empty = parse("HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert!(matches!(empty.framing, Framing::Length(0)));
    }

    #[test]
    fn a_request_is_one_buffer_with_its_length() {
        let req = Request::post("/v1/completions")
            .header("host", "h:1")
            .body(bytes::Bytes::from_static(b"{}"))
            .unwrap();
        assert_eq!(
            String::from_utf8(encode(&req)).unwrap(),
            "POST /v1/completions HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\n\r\n{}"
        );
    }
}
