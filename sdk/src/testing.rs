//! Replaying recorded response bodies through an adapter's parser, natively,
//! with plain `cargo test`.
//!
//! The body is framed by [`crate::framing::Decoder`], the same code the host
//! runs, and fed message by message exactly as in a run: the SSE `[DONE]`
//! sentinel ends the stream (anything after it is ignored), then
//! [`StreamParser::finish`] is called.
//!
//! ```
//! use llm_loadtest_sdk::testing::replay_split_everywhere;
//! # use llm_loadtest_sdk::{Adapter, AdapterInfo, Event, Framing, GenerationRequest,
//! #     HttpRequest, StreamParser};
//! # struct Echo;
//! # #[derive(Default)]
//! # struct EchoParser;
//! # impl StreamParser for EchoParser {
//! #     fn feed(&mut self, m: &[u8]) -> Result<Vec<Event>, String> {
//! #         Ok(vec![Event::token(String::from_utf8_lossy(m))])
//! #     }
//! # }
//! # impl Adapter for Echo {
//! #     type Parser = EchoParser;
//! #     fn info() -> AdapterInfo { unreachable!() }
//! #     fn build_request(_: &GenerationRequest) -> Result<HttpRequest, String> { unreachable!() }
//! # }
//! let body = b"data: a\n\ndata: b\n\ndata: [DONE]\n\ndata: ignored\n\n";
//! let replay = replay_split_everywhere::<Echo>(Framing::Sse, body).unwrap();
//! assert_eq!(replay.summary.content, "ab");
//! assert_eq!(replay.summary.content_events, 2);
//! assert!(replay.summary.done);
//! ```

use crate::adapter::{Adapter, StreamParser};
use crate::framing::{Decoder, Frame, Framing, FramingError};
use crate::types::{Event, Usage};

/// What a replay produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Every event, in order, from every `feed` and the final `finish`.
    pub events: Vec<Event>,
    /// The events summed up the way the host reads them.
    pub summary: Summary,
}

/// The events of one response, summed up the way the host reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// All [`Event::Token`] text, concatenated.
    pub content: String,
    /// All [`Event::Reasoning`] text, concatenated.
    pub reasoning: String,
    /// How many [`Event::Token`] events with text (each is timed as a token arrival; the
    /// empty ones that mark a token without text are timed only in `--metric-mode vllm`
    /// and are not counted here).
    pub content_events: usize,
    /// How many [`Event::Reasoning`] events.
    pub reasoning_events: usize,
    /// The last [`Event::Usage`]: the host keeps the last one.
    pub usage: Option<Usage>,
    /// How many [`Event::Usage`] events.
    pub usage_events: usize,
    /// The last [`Event::Finish`] reason.
    pub finish_reason: Option<String>,
    /// Every [`Event::Error`] message.
    pub errors: Vec<String>,
    /// The stream said it was complete: an [`Event::Done`] or the SSE
    /// `[DONE]` sentinel.
    pub done: bool,
}

impl Summary {
    /// Sum up `events`.
    pub fn from_events(events: &[Event]) -> Self {
        let mut s = Summary::default();
        for e in events {
            match e {
                Event::Token(d) => {
                    s.content.push_str(&d.text);
                    if !d.text.is_empty() || d.tokens.unwrap_or(0) > 0 {
                        s.content_events += 1;
                    }
                }
                Event::Reasoning(d) => {
                    s.reasoning.push_str(&d.text);
                    s.reasoning_events += 1;
                }
                Event::Usage(u) => {
                    s.usage = Some(*u);
                    s.usage_events += 1;
                }
                Event::Finish(r) => s.finish_reason = Some(r.clone()),
                Event::Error(m) => s.errors.push(m.clone()),
                Event::Done => s.done = true,
            }
        }
        s
    }
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The body could not be framed.
    #[error("framing the body failed: {0}")]
    Framing(#[from] FramingError),
    /// `feed` returned an error.
    #[error("feed of message #{index} ({message}) failed: {error}")]
    Feed {
        /// 0-based position of the message in the stream.
        index: usize,
        /// The start of the message.
        message: String,
        /// The parser's error.
        error: String,
    },
    /// `finish` returned an error.
    #[error("finish failed: {0}")]
    Finish(String),
    /// Splitting the body at one byte gave other events than the whole body.
    #[error(
        "body split at byte {cut} gave other events than the whole body:\n whole: {whole:?}\n split: {split:?}"
    )]
    SplitMismatch {
        /// The byte offset of the split.
        cut: usize,
        /// The events from the whole body.
        whole: Vec<Event>,
        /// The events from the split body.
        split: Vec<Event>,
    },
}

/// Replay `body`, arriving in one piece, through a new parser of adapter `A`.
pub fn replay<A: Adapter>(framing: Framing, body: &[u8]) -> Result<Replay, ReplayError> {
    replay_chunks::<A>(framing, &[body])
}

/// Replay a body arriving as `chunks` (transport reads) through a new parser
/// of adapter `A`.
pub fn replay_chunks<A: Adapter>(
    framing: Framing,
    chunks: &[&[u8]],
) -> Result<Replay, ReplayError> {
    let mut feeder = Feeder::<A::Parser> {
        decoder: Decoder::new(framing),
        parser: A::Parser::default(),
        events: Vec::new(),
        index: 0,
    };
    let mut saw_done = false;
    for chunk in chunks {
        feeder.decoder.push(chunk)?;
        if feeder.drain()? {
            saw_done = true;
            break;
        }
    }
    if !saw_done {
        feeder.decoder.finish()?;
        saw_done = feeder.drain()?;
    }
    let Feeder {
        mut parser,
        mut events,
        ..
    } = feeder;
    events.extend(parser.finish().map_err(ReplayError::Finish)?);
    let mut summary = Summary::from_events(&events);
    summary.done |= saw_done;
    Ok(Replay { events, summary })
}

struct Feeder<P> {
    decoder: Decoder,
    parser: P,
    events: Vec<Event>,
    index: usize,
}

impl<P: StreamParser> Feeder<P> {
    /// Feed every complete message; `true` once the `[DONE]` sentinel came.
    fn drain(&mut self) -> Result<bool, ReplayError> {
        while let Some(frame) = self.decoder.next_frame() {
            match frame {
                Frame::Done => return Ok(true),
                Frame::Message(message) => {
                    let out = self
                        .parser
                        .feed(&message)
                        .map_err(|error| ReplayError::Feed {
                            index: self.index,
                            message: crate::json::excerpt(&message),
                            error,
                        })?;
                    self.events.extend(out);
                    self.index += 1;
                }
            }
        }
        Ok(false)
    }
}

/// Replay `body` whole, then split in two at every byte boundary, then one
/// byte at a time, and check that every way gives the same events. Returns
/// the whole-body replay.
///
/// Framing is the host's job, so a parser should never see a difference;
/// this guards against a parser that keeps state between messages going
/// wrong when messages arrive in other batches.
pub fn replay_split_everywhere<A: Adapter>(
    framing: Framing,
    body: &[u8],
) -> Result<Replay, ReplayError> {
    let whole = replay::<A>(framing, body)?;
    let check = |cut: usize, split: Replay| {
        if split.events == whole.events {
            Ok(())
        } else {
            Err(ReplayError::SplitMismatch {
                cut,
                whole: whole.events.clone(),
                split: split.events,
            })
        }
    };
    for cut in 0..=body.len() {
        let (a, b) = body.split_at(cut);
        check(cut, replay_chunks::<A>(framing, &[a, b])?)?;
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    check(1, replay_chunks::<A>(framing, &bytes)?)?;
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AdapterInfo, GenerationRequest, HttpRequest};

    /// Echoes each message as a token; `err` fails, `usage` reports usage,
    /// and it keeps a count so `finish` can show state survives.
    struct Echo;

    #[derive(Default)]
    struct EchoParser {
        seen: u32,
    }

    impl StreamParser for EchoParser {
        fn feed(&mut self, m: &[u8]) -> Result<Vec<Event>, String> {
            self.seen += 1;
            match m {
                b"err" => Err("bad message".into()),
                b"usage" => Ok(vec![Event::Usage(Usage {
                    completion_tokens: Some(self.seen),
                    ..Usage::default()
                })]),
                _ => Ok(vec![Event::token(String::from_utf8_lossy(m))]),
            }
        }

        fn finish(&mut self) -> Result<Vec<Event>, String> {
            Ok(vec![Event::Finish(format!("seen {}", self.seen))])
        }
    }

    impl Adapter for Echo {
        type Parser = EchoParser;
        fn info() -> AdapterInfo {
            AdapterInfo {
                name: "echo".into(),
                version: "0".into(),
                description: String::new(),
                framing: Framing::Sse,
                default_path: "/".into(),
                capabilities: vec![],
            }
        }
        fn build_request(_: &GenerationRequest) -> Result<HttpRequest, String> {
            Err("not used".into())
        }
    }

    #[test]
    fn sse_done_ends_the_stream_then_finish_runs() {
        let r = replay::<Echo>(
            Framing::Sse,
            b": ping\n\ndata: a\n\ndata: usage\n\ndata: [DONE]\n\ndata: late\n\n",
        )
        .unwrap();
        assert_eq!(
            r.events,
            vec![
                Event::token("a"),
                Event::Usage(Usage {
                    completion_tokens: Some(2),
                    ..Usage::default()
                }),
                Event::Finish("seen 2".into()),
            ]
        );
        assert!(r.summary.done);
        assert_eq!(r.summary.usage_events, 1);
    }

    #[test]
    fn body_without_done_is_not_done() {
        let r = replay::<Echo>(Framing::Ndjson, b"x\ny").unwrap();
        assert_eq!(r.summary.content, "xy");
        assert_eq!(r.summary.content_events, 2);
        assert!(!r.summary.done);
        assert_eq!(r.summary.finish_reason.as_deref(), Some("seen 2"));
    }

    #[test]
    fn whole_body_is_one_feed() {
        let r = replay::<Echo>(Framing::WholeBody, b"x\ny").unwrap();
        assert_eq!(r.summary.content, "x\ny");
        assert_eq!(r.summary.content_events, 1);
    }

    #[test]
    fn feed_error_names_the_message() {
        let e = replay::<Echo>(Framing::Ndjson, b"ok\nerr\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "feed of message #1 (err) failed: bad message"
        );
    }

    #[test]
    fn split_everywhere_gives_the_whole_body_replay() {
        let body = b"data: h\xc3\xa9\r\n\r\ndata: llo\n\n";
        let r = replay_split_everywhere::<Echo>(Framing::Sse, body).unwrap();
        assert_eq!(r.summary.content, "h\u{e9}llo");
        assert_eq!(r.summary.content_events, 2);
    }

    /// A parser whose output differs between replays (it leaks state
    /// through a global), which the split check must catch.
    struct Leaky;

    #[derive(Default)]
    struct LeakyParser;

    thread_local! {
        static FEEDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    impl StreamParser for LeakyParser {
        fn feed(&mut self, _: &[u8]) -> Result<Vec<Event>, String> {
            let n = FEEDS.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            Ok(vec![Event::token(n.to_string())])
        }
    }

    impl Adapter for Leaky {
        type Parser = LeakyParser;
        fn info() -> AdapterInfo {
            Echo::info()
        }
        fn build_request(r: &GenerationRequest) -> Result<HttpRequest, String> {
            Echo::build_request(r)
        }
    }

    #[test]
    fn split_everywhere_catches_output_that_differs_between_replays() {
        let e = replay_split_everywhere::<Leaky>(Framing::Ndjson, b"a\n").unwrap_err();
        assert!(
            matches!(e, ReplayError::SplitMismatch { cut: 0, .. }),
            "{e}"
        );
    }

    #[test]
    fn summary_keeps_last_usage_and_all_errors() {
        let s = Summary::from_events(&[
            Event::reasoning("r"),
            Event::Usage(Usage {
                completion_tokens: Some(1),
                ..Usage::default()
            }),
            Event::Error("e1".into()),
            Event::Usage(Usage {
                completion_tokens: Some(5),
                ..Usage::default()
            }),
            Event::Error("e2".into()),
            Event::Done,
        ]);
        assert_eq!(s.reasoning, "r");
        assert_eq!(s.reasoning_events, 1);
        assert_eq!(s.usage.and_then(|u| u.completion_tokens), Some(5));
        assert_eq!(s.errors, vec!["e1", "e2"]);
        assert!(s.done);
    }
}
