//! Turning a stream's text into deltas when the server may repeat all the
//! text so far in every message.
//!
//! SGLang's `/generate` sends cumulative text unless the server was started
//! with `--stream-output`; Triton's `text_output` is cumulative or a delta
//! depending on the backend. The host times every content event as a token
//! arrival, so a parser must emit each new piece of text exactly once.
//!
//! The Triton adapter compiles this file by path (as the vllm adapter does
//! with openai's protocol code): linking this crate would bring its component
//! exports along.

use llm_loadtest_sdk::{Level, log};

/// What a new stream is assumed to send before its messages say otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Cumulative text (SGLang's protocol).
    Cumulative,
    /// Unknown: the second message with new text decides (Triton).
    Detect,
}

/// What the stream has shown itself to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not decided yet.
    Detect,
    /// Each message holds all the text so far.
    Cumulative,
    /// Each message holds only new text.
    Delta,
}

/// Per-stream state: the text so far and what kind of stream this is.
#[derive(Debug)]
pub struct TextDelta {
    mode: Mode,
    /// The last cumulative text (in `Detect` mode: the first message's text).
    so_far: String,
    /// One warning per stream is enough to say the text was rewritten.
    warned: bool,
}

impl TextDelta {
    /// A tracker for a new stream.
    pub fn new(start: Start) -> Self {
        TextDelta {
            mode: match start {
                Start::Cumulative => Mode::Cumulative,
                Start::Detect => Mode::Detect,
            },
            so_far: String::new(),
            warned: false,
        }
    }

    /// What the stream has shown itself to be so far.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The new text in a message whose text is `text`, or `None` when it
    /// adds nothing (an empty or repeated message is not a token).
    ///
    /// - Cumulative: the part after the text so far. A message that is not
    ///   an extension of it is emitted whole, with a warning; one shorter
    ///   than the text so far means the server sends deltas after all, and
    ///   the rest of the stream is read so.
    /// - Detect: the first text is emitted whole; the next text that differs
    ///   from it decides: a longer text starting with it means cumulative,
    ///   anything else means deltas. A repeat of the first text cannot be
    ///   told apart (a repeated token, or a message with nothing new) and
    ///   emits nothing.
    pub fn next<'a>(&mut self, text: &'a str) -> Option<&'a str> {
        if text.is_empty() {
            return None;
        }
        match self.mode {
            Mode::Delta => Some(text),
            Mode::Detect if self.so_far.is_empty() => {
                self.so_far.push_str(text);
                Some(text)
            }
            Mode::Detect => {
                if text == self.so_far {
                    None
                } else if let Some(rest) = text.strip_prefix(self.so_far.as_str()) {
                    self.mode = Mode::Cumulative;
                    self.so_far.push_str(rest);
                    Some(rest)
                } else {
                    self.mode = Mode::Delta;
                    self.so_far = String::new();
                    Some(text)
                }
            }
            Mode::Cumulative => {
                if let Some(rest) = text.strip_prefix(self.so_far.as_str()) {
                    self.so_far.push_str(rest);
                    return (!rest.is_empty()).then_some(rest);
                }
                if text.len() < self.so_far.len() {
                    // Logged every time: it happens at most once per stream.
                    let message = format!(
                        "the server's text shrank from {} to {} bytes: reading the rest of this \
                         stream as deltas (an SGLang server started with --stream-output sends \
                         deltas)",
                        self.so_far.len(),
                        text.len()
                    );
                    log(Level::Warn, &message);
                    self.mode = Mode::Delta;
                    self.so_far = String::new();
                } else {
                    self.warn_once(
                        "the server's cumulative text does not start with the text so far: \
                         counting the whole new text as new output",
                    );
                    self.so_far.clear();
                    self.so_far.push_str(text);
                }
                Some(text)
            }
        }
    }

    fn warn_once(&mut self, message: &str) {
        if !self.warned {
            self.warned = true;
            log(Level::Warn, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: Start, texts: &[&str]) -> (Vec<String>, Mode) {
        let mut t = TextDelta::new(start);
        let out = texts
            .iter()
            .filter_map(|x| t.next(x).map(str::to_string))
            .collect();
        (out, t.mode())
    }

    #[test]
    fn cumulative_text_becomes_deltas() {
        let (out, mode) = run(Start::Cumulative, &["", " a", " a", " a b", " a b\u{e9}"]);
        assert_eq!(out, [" a", " b", "\u{e9}"]);
        assert_eq!(mode, Mode::Cumulative);
    }

    #[test]
    fn a_non_prefix_is_emitted_whole_and_tracking_goes_on() {
        let (out, mode) = run(Start::Cumulative, &["ab", "xyz", "xyzw"]);
        assert_eq!(out, ["ab", "xyz", "w"]);
        assert_eq!(mode, Mode::Cumulative);
    }

    #[test]
    fn shrinking_text_switches_to_deltas() {
        // An SGLang server with --stream-output: deltas from the start.
        let (out, mode) = run(Start::Cumulative, &[" hello", " big", " hello", " h"]);
        assert_eq!(out, [" hello", " big", " hello", " h"]);
        assert_eq!(mode, Mode::Delta);
    }

    #[test]
    fn detect_finds_cumulative_text() {
        let (out, mode) = run(Start::Detect, &[" a", " a b", " a b c"]);
        assert_eq!(out, [" a", " b", " c"]);
        assert_eq!(mode, Mode::Cumulative);
    }

    #[test]
    fn detect_finds_deltas_even_with_repeated_tokens_later() {
        let (out, mode) = run(Start::Detect, &[" 2008", " x", " 2008", " 2008", " 2008"]);
        assert_eq!(out, [" 2008", " x", " 2008", " 2008", " 2008"]);
        assert_eq!(mode, Mode::Delta);
    }

    #[test]
    fn detect_waits_on_a_repeat_of_the_first_text() {
        // Ambiguous: a repeated delta or a cumulative message with nothing
        // new. Nothing is emitted until a message decides.
        let (out, mode) = run(Start::Detect, &[" a", " a", " b"]);
        assert_eq!(out, [" a", " b"]);
        assert_eq!(mode, Mode::Delta);
        let (out, mode) = run(Start::Detect, &[" a", " a", " a b"]);
        assert_eq!(out, [" a", " b"]);
        assert_eq!(mode, Mode::Cumulative);
    }

    #[test]
    fn multibyte_text_is_cut_on_the_prefix_only() {
        let (out, _) = run(Start::Detect, &["\u{1f600}", "\u{1f600}\u{e9}t\u{e9}"]);
        assert_eq!(out, ["\u{1f600}", "\u{e9}t\u{e9}"]);
    }
}
