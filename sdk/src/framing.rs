//! Splitting a response body into the messages an adapter's parser is fed.
//!
//! The host frames bytes natively (the plugin never sees transport chunks),
//! and the SDK's test helpers use this same code, so an adapter tested with
//! `cargo test` sees exactly the messages it will see in a run.
//!
//! Both decoders are incremental: feed transport chunks as they arrive, split
//! at any byte, and take whole messages out as they complete.

use std::collections::VecDeque;

/// How a response body is framed (mirrors the WIT `framing` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Server-sent events: each event's `data:` payload is one message.
    Sse,
    /// Newline-delimited JSON: each non-empty line is one message.
    Ndjson,
    /// The whole body is one message.
    WholeBody,
}

impl Framing {
    /// The lower-case name used in the CLI and in result files.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Sse => "sse",
            Framing::Ndjson => "ndjson",
            Framing::WholeBody => "whole-body",
        }
    }
}

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A payload for the adapter's parser.
    Message(Vec<u8>),
    /// The OpenAI-style `data: [DONE]` sentinel: the stream is complete.
    Done,
}

/// Why a body could not be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    /// One message grew past the decoder's limit without ending.
    MessageTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FramingError::MessageTooLarge { limit } => {
                write!(f, "a framed message exceeded {limit} bytes without ending")
            }
        }
    }
}

impl std::error::Error for FramingError {}

/// The default cap on one message: large enough for a 1 MiB line with room to
/// spare, small enough that a server streaming garbage cannot exhaust memory.
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// An incremental decoder for one framing.
#[derive(Debug)]
pub struct Decoder {
    framing: Framing,
    max_message: usize,
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// SSE: `data:` lines of the current event, joined by `\n`.
    event_data: Vec<u8>,
    event_has_data: bool,
    /// SSE: at the very start of the body a UTF-8 BOM is skipped.
    at_start: bool,
    /// SSE: the previous line ended with `\r`, so a following `\n` is part of it.
    after_cr: bool,
    ready: VecDeque<Frame>,
}

impl Decoder {
    /// A decoder for `framing` with the default message cap.
    pub fn new(framing: Framing) -> Self {
        Self::with_limit(framing, DEFAULT_MAX_MESSAGE)
    }

    /// A decoder whose messages may not exceed `max_message` bytes.
    pub fn with_limit(framing: Framing, max_message: usize) -> Self {
        Decoder {
            framing,
            max_message,
            line: Vec::new(),
            event_data: Vec::new(),
            event_has_data: false,
            at_start: true,
            after_cr: false,
            ready: VecDeque::new(),
        }
    }

    /// The framing this decoder splits.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Push one transport chunk. Completed messages become available from
    /// [`Decoder::next_frame`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), FramingError> {
        match self.framing {
            Framing::WholeBody => {
                self.line.extend_from_slice(chunk);
                self.check_len(self.line.len())
            }
            Framing::Ndjson | Framing::Sse => {
                let mut rest = chunk;
                while !rest.is_empty() {
                    if self.after_cr {
                        self.after_cr = false;
                        if rest[0] == b'\n' {
                            rest = &rest[1..];
                            continue;
                        }
                    }
                    match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                        Some(i) => {
                            self.line.extend_from_slice(&rest[..i]);
                            self.check_len(self.line.len())?;
                            self.after_cr = rest[i] == b'\r';
                            rest = &rest[i + 1..];
                            self.end_line()?;
                        }
                        None => {
                            self.line.extend_from_slice(rest);
                            self.check_len(self.line.len())?;
                            rest = &[];
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The body ended: flush a final message that had no terminator.
    pub fn finish(&mut self) -> Result<(), FramingError> {
        match self.framing {
            Framing::WholeBody => {
                let body = std::mem::take(&mut self.line);
                self.ready.push_back(Frame::Message(body));
            }
            Framing::Ndjson => {
                if !self.line.is_empty() {
                    self.end_line()?;
                }
            }
            Framing::Sse => {
                if !self.line.is_empty() {
                    self.end_line()?;
                }
                // An event is dispatched only on a blank line; a body cut
                // before it still delivered its data, so hand it over.
                self.dispatch_event();
            }
        }
        Ok(())
    }

    /// The next completed message, if any.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.ready.pop_front()
    }

    /// Bytes held that do not yet form a message.
    pub fn pending_bytes(&self) -> usize {
        self.line.len() + self.event_data.len()
    }

    fn check_len(&self, len: usize) -> Result<(), FramingError> {
        if len > self.max_message {
            Err(FramingError::MessageTooLarge {
                limit: self.max_message,
            })
        } else {
            Ok(())
        }
    }

    fn end_line(&mut self) -> Result<(), FramingError> {
        let mut line = std::mem::take(&mut self.line);
        match self.framing {
            Framing::Ndjson => {
                let trimmed = trim_ascii(&line);
                if !trimmed.is_empty() {
                    if trimmed.len() != line.len() {
                        line = trimmed.to_vec();
                    }
                    self.ready.push_back(Frame::Message(line));
                }
            }
            Framing::Sse => {
                let mut l: &[u8] = &line;
                if self.at_start {
                    self.at_start = false;
                    l = l.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(l);
                }
                if l.is_empty() {
                    self.dispatch_event();
                } else if l[0] == b':' {
                    // A comment (keep-alive ping): no message.
                } else {
                    let (field, value) = match l.iter().position(|&b| b == b':') {
                        Some(i) => {
                            let v = &l[i + 1..];
                            (&l[..i], v.strip_prefix(b" ").unwrap_or(v))
                        }
                        None => (l, &[][..]),
                    };
                    if field == b"data" {
                        if self.event_has_data {
                            self.event_data.push(b'\n');
                        }
                        self.event_data.extend_from_slice(value);
                        self.event_has_data = true;
                        self.check_len(self.event_data.len())?;
                    }
                    // `event:`, `id:`, `retry:` carry nothing an adapter needs.
                }
                // Reuse the line's allocation for the next one.
                line.clear();
                self.line = line;
            }
            Framing::WholeBody => {}
        }
        Ok(())
    }

    fn dispatch_event(&mut self) {
        if !self.event_has_data {
            return;
        }
        self.event_has_data = false;
        let data = std::mem::take(&mut self.event_data);
        if trim_ascii(&data) == b"[DONE]" {
            self.ready.push_back(Frame::Done);
        } else {
            self.ready.push_back(Frame::Message(data));
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Frame a whole recorded body at once (tests and replays).
pub fn split_all(framing: Framing, body: &[u8]) -> Result<Vec<Frame>, FramingError> {
    let mut d = Decoder::new(framing);
    d.push(body)?;
    d.finish()?;
    let mut out = Vec::new();
    while let Some(f) = d.next_frame() {
        out.push(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Message(m) => String::from_utf8_lossy(m).into_owned(),
                Frame::Done => "[DONE]".to_string(),
            })
            .collect()
    }

    const SSE: &[u8] = b": ping\n\ndata: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\nevent: x\ndata: l1\ndata: l2\n\ndata: [DONE]\n\n";

    #[test]
    fn sse_whole_body() {
        let f = split_all(Framing::Sse, SSE).unwrap();
        assert_eq!(msgs(&f), vec!["{\"a\":1}", "{\"b\":2}", "l1\nl2", "[DONE]"]);
    }

    #[test]
    fn sse_split_at_every_byte_gives_the_same_messages() {
        let whole = split_all(Framing::Sse, SSE).unwrap();
        for cut in 0..SSE.len() {
            let mut d = Decoder::new(Framing::Sse);
            d.push(&SSE[..cut]).unwrap();
            d.push(&SSE[cut..]).unwrap();
            d.finish().unwrap();
            let mut got = Vec::new();
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn sse_one_byte_at_a_time() {
        let mut d = Decoder::new(Framing::Sse);
        for b in SSE {
            d.push(std::slice::from_ref(b)).unwrap();
        }
        d.finish().unwrap();
        let mut got = Vec::new();
        while let Some(f) = d.next_frame() {
            got.push(f);
        }
        assert_eq!(got, split_all(Framing::Sse, SSE).unwrap());
    }

    #[test]
    fn sse_unterminated_last_event_is_delivered() {
        let f = split_all(Framing::Sse, b"data: {\"x\":1}").unwrap();
        assert_eq!(msgs(&f), vec!["{\"x\":1}"]);
    }

    #[test]
    fn ndjson_lines_and_crlf() {
        let f = split_all(Framing::Ndjson, b"{\"a\":1}\r\n\n  \n{\"b\":2}").unwrap();
        assert_eq!(msgs(&f), vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn whole_body_is_one_message() {
        let f = split_all(Framing::WholeBody, b"{\"a\":\n1}").unwrap();
        assert_eq!(msgs(&f), vec!["{\"a\":\n1}"]);
    }

    #[test]
    fn oversized_message_is_an_error_not_unbounded_memory() {
        let mut d = Decoder::with_limit(Framing::Ndjson, 8);
        assert!(d.push(b"0123").is_ok());
        assert_eq!(
            d.push(b"456789"),
            Err(FramingError::MessageTooLarge { limit: 8 })
        );
    }
}
