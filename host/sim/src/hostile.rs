//! Servers that break HTTP on purpose, below the level the simulator's faults work at (those
//! are answers a real engine gives; these are what a broken proxy, a hung process or a
//! misconfigured gateway does to the bytes). Each connection gets the same treatment, scripted
//! byte by byte on a raw socket, so nothing in an HTTP library can tidy it up. Used by the
//! client's tests to check that each ends as a classified error with the run going on and
//! memory bounded; `sim --hostile KIND` serves one by hand.
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One way of breaking a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Hostile {
    /// A valid streamed response, one byte every 20 ms, headers first.
    TrickleHeaders,
    /// HTTP 200 with streaming headers, then silence with the connection open.
    SilentBody,
    /// A header line of 10 MB.
    HugeHeader,
    /// HTTP 200, then one SSE line of 20 MB with no end.
    HugeLine,
    /// 307 Temporary Redirect to another path.
    Redirect,
    /// Half a status line and headers, then a TCP reset.
    ResetInHeaders,
    /// Accepts the connection and never reads or writes.
    NeverRead,
    /// The stream gzip-compressed, though the client asked for no encoding.
    Gzip,
    /// A chunked body whose chunk size is not hexadecimal.
    BrokenChunked,
    /// A valid stream as HTTP/1.0: no length, the end of the body is the close.
    Http10CloseDelimited,
}

/// Each event a valid OpenAI completions stream of "Hi there" sends, and its end.
fn openai_stream() -> String {
    let chunk = |text: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"h\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\
             \"choices\":[{{\"index\":0,\"text\":\"{text}\",\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    [
        chunk("Hi", "null"),
        chunk(" there", "null"),
        chunk("", "\"length\""),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat()
}

/// Reads a request head and its `content-length` body, or gives up at end of file.
async fn read_request(tcp: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            return true;
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Writes `total` bytes of `byte` in 64 KiB pieces, stopping when the client goes.
async fn flood(tcp: &mut TcpStream, byte: u8, total: usize) {
    let piece = vec![byte; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let n = piece.len().min(total - sent);
        if tcp.write_all(&piece[..n]).await.is_err() {
            return;
        }
        sent += n;
    }
}

/// Holds the connection until the client closes it.
async fn hold(tcp: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
}

async fn answer(kind: Hostile, mut tcp: TcpStream) {
    if kind == Hostile::NeverRead {
        // Not a byte read or written; the socket is held until the server stops.
        std::future::pending::<()>().await;
    }
    if !read_request(&mut tcp).await {
        return;
    }
    const SSE_HEAD: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    match kind {
        Hostile::TrickleHeaders => {
            let body = openai_stream();
            let whole = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            for b in whole.bytes() {
                if tcp.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Hostile::SilentBody => {
            let _ = tcp.write_all(SSE_HEAD.as_bytes()).await;
            hold(&mut tcp).await;
        }
        Hostile::HugeHeader => {
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nx-huge: ").await;
            flood(&mut tcp, b'a', 10 << 20).await;
            let _ = tcp.write_all(b"\r\n\r\n").await;
        }
        Hostile::HugeLine => {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: ")
                .await;
            flood(&mut tcp, b'a', 20 << 20).await;
        }
        Hostile::Redirect => {
            let _ = tcp
                .write_all(
                    b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n",
                )
                .await;
            hold(&mut tcp).await;
        }
        Hostile::ResetInHeaders => {
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-ty").await;
            // Linger 0: the close is a reset, not an orderly end of stream. (tokio deprecates
            // SO_LINGER because a nonzero linger blocks the thread on drop; zero never does.)
            #[allow(deprecated)]
            let _ = tcp.set_linger(Some(Duration::ZERO));
        }
        Hostile::Gzip => {
            // gzip's magic and a deflate block that is not the stream: the header alone must
            // be enough for the client to refuse it.
            let body: &[u8] =
                b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd\xc9\xc9\x07\x00";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n\
                 content-length: {}\r\n\r\n",
                body.len()
            );
            let _ = tcp.write_all(head.as_bytes()).await;
            let _ = tcp.write_all(body).await;
            hold(&mut tcp).await;
        }
        Hostile::BrokenChunked => {
            let _ = tcp.write_all(SSE_HEAD.as_bytes()).await;
            let _ = tcp.write_all(b"zz\r\ndata: {}\r\n").await;
            hold(&mut tcp).await;
        }
        Hostile::Http10CloseDelimited => {
            let head = "HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
            let _ = tcp.write_all(head.as_bytes()).await;
            let _ = tcp.write_all(openai_stream().as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
        Hostile::NeverRead => {}
    }
}

/// A hostile server on `listener`; stops when the handle is dropped.
pub struct HostileHandle {
    task: JoinHandle<()>,
}

impl Drop for HostileHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileHandle {
    /// Serves until the accept loop ends (it does not, short of an error or Ctrl-C).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Answers every connection on `listener` as `kind` says, each in a task of its own.
pub fn serve(kind: Hostile, listener: TcpListener) -> HostileHandle {
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            conns.spawn(answer(kind, tcp));
        }
    });
    HostileHandle { task }
}
