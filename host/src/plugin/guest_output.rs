//! A plugin's stdout and stderr: written to the host's log line by line,
//! never to the terminal, and the stderr of the current call kept so a trap
//! can say what the guest printed (a Rust panic message, typically).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line written to the log; the rest of a longer line is dropped so
/// a guest cannot make the host buffer without bound.
const MAX_LINE: usize = 4096;
/// How much of one call's stderr is kept for an error message.
const MAX_CALL_STDERR: usize = 1024;
/// How much one `check-write` lets the guest write at once.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Stdout,
    Stderr,
}

#[derive(Debug)]
struct SinkState {
    plugin: Arc<str>,
    which: Which,
    line: Vec<u8>,
    /// The current line went past `MAX_LINE`; drop bytes until its end.
    overflowed: bool,
    /// stderr only: what the current call wrote, for error messages.
    call_text: String,
}

impl SinkState {
    fn write(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            self.push(&bytes[..nl]);
            self.end_line();
            bytes = &bytes[nl + 1..];
        }
        self.push(bytes);
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.overflowed {
            return;
        }
        let room = MAX_LINE.saturating_sub(self.line.len());
        if bytes.len() > room {
            self.line.extend_from_slice(&bytes[..room]);
            self.overflowed = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self) {
        let raw = std::mem::take(&mut self.line);
        let truncated = std::mem::replace(&mut self.overflowed, false);
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim_end_matches('\r');
        let plugin = &*self.plugin;
        match self.which {
            Which::Stdout => tracing::info!(plugin, truncated, "stdout: {text}"),
            Which::Stderr => {
                tracing::warn!(plugin, truncated, "stderr: {text}");
                // std's panic hook adds a hint about backtraces that says
                // nothing to a user reading a plugin error.
                if !text.is_empty()
                    && !text.starts_with("note: run with `RUST_BACKTRACE")
                    && self.call_text.len() < MAX_CALL_STDERR
                {
                    if !self.call_text.is_empty() {
                        self.call_text.push_str(" / ");
                    }
                    let room = MAX_CALL_STDERR - self.call_text.len();
                    let cut = floor_char_boundary(text, room);
                    self.call_text.push_str(&text[..cut]);
                }
            }
        }
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// One of a plugin's two output streams, shared by every WASI handle the
/// guest opens on it.
#[derive(Debug, Clone)]
pub(crate) struct GuestOutput {
    state: Arc<Mutex<SinkState>>,
}

impl GuestOutput {
    fn new(plugin: Arc<str>, which: Which) -> Self {
        GuestOutput {
            state: Arc::new(Mutex::new(SinkState {
                plugin,
                which,
                line: Vec::new(),
                overflowed: false,
                call_text: String::new(),
            })),
        }
    }

    pub(crate) fn stdout(plugin: Arc<str>) -> Self {
        Self::new(plugin, Which::Stdout)
    }

    pub(crate) fn stderr(plugin: Arc<str>) -> Self {
        Self::new(plugin, Which::Stderr)
    }

    fn with<R>(&self, f: impl FnOnce(&mut SinkState) -> R) -> R {
        // Nothing panics while holding this lock, but a poisoned lock still
        // holds usable bytes.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    fn write(&self, bytes: &[u8]) {
        self.with(|s| s.write(bytes));
    }

    /// Forget what earlier calls wrote; called before each call.
    pub(crate) fn start_call(&self) {
        self.with(|s| s.call_text.clear());
    }

    /// What the current call wrote on stderr, complete lines first, then
    /// any unterminated line (a panic message ends with a newline, but a
    /// trap may cut a line short).
    pub(crate) fn call_text(&self) -> String {
        self.with(|s| {
            let mut text = s.call_text.clone();
            if !s.line.is_empty() && text.len() < MAX_CALL_STDERR {
                if !text.is_empty() {
                    text.push_str(" / ");
                }
                let pending = String::from_utf8_lossy(&s.line);
                let cut = floor_char_boundary(&pending, MAX_CALL_STDERR - text.len());
                text.push_str(&pending[..cut]);
            }
            text
        })
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Lines go to the log as they complete; there is nothing to push.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        GuestOutput::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_of_a_call_is_kept_without_the_backtrace_hint() {
        let err = GuestOutput::stderr(Arc::from("t"));
        err.write(b"old line\n");
        err.start_call();
        err.write(b"thread '<unnamed>' panicked at src/lib.rs:3:5:\nboom\n");
        err.write(b"note: run with `RUST_BACKTRACE=1` environment variable\npart");
        assert_eq!(
            err.call_text(),
            "thread '<unnamed>' panicked at src/lib.rs:3:5: / boom / part"
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let out = GuestOutput::stderr(Arc::from("t"));
        out.write(&vec![b'x'; MAX_LINE * 3]);
        out.write(b"\nnext\n");
        let text = out.call_text();
        assert!(text.len() <= MAX_CALL_STDERR);
        assert!(text.starts_with("xxx"));
    }
}
