//! Feeding a body to an adapter in transport chunks, the way a run reads a
//! response: every chunk through the host's native [`Decoder`], one `feed`
//! per framed message, `[DONE]` kept by the host, `finish` at the end, and
//! the stream abandoned at its first error.
//!
//! A run checks for a stream error after each transport chunk; this stops
//! after each message (as `plugin::replay` does), the earliest a run could
//! stop, so a result does not depend on where the transport split the body.

use llm_loadtest_sdk::framing::{Decoder, Frame};

use crate::plugin::{Adapter, Batch, Event, Framing, PluginError, StreamParser};

/// What one framed message produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameResult {
    /// The `[DONE]` sentinel: consumed by the host, never fed.
    Sentinel,
    Events(Vec<Event>),
}

/// Where a stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    NewParser,
    /// The framed message with this index.
    Message(usize),
    Finish,
    Framing,
}

/// How a call failed, as the host classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// `feed` or `finish` returned `err`: the host records a parse error.
    Parse,
    /// A trap, a timeout or the memory cap: the instance was thrown away.
    Trap,
    /// Anything else the runtime refused (an oversized output, a lost
    /// instance, a framing limit).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    fn plugin(stage: Stage, e: &PluginError) -> Self {
        let kind = if e.killed_instance() {
            FailureKind::Trap
        } else if e.class() == "parse" {
            FailureKind::Parse
        } else {
            FailureKind::Other
        };
        Failure {
            stage,
            kind,
            message: e.to_string(),
        }
    }

    /// One line for a report.
    pub fn describe(&self) -> String {
        let at = match self.stage {
            Stage::NewParser => "creating the parser".to_owned(),
            Stage::Message(i) => format!("message {i}"),
            Stage::Finish => "finish()".to_owned(),
            Stage::Framing => "framing".to_owned(),
        };
        let what = match self.kind {
            FailureKind::Parse => "returned an error",
            FailureKind::Trap => "trapped",
            FailureKind::Other => "failed",
        };
        format!("{at} {what}: {}", excerpt(&self.message))
    }
}

/// Everything one stream produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    /// One entry per framed message, in order.
    pub frames: Vec<FrameResult>,
    /// What `finish` returned; `None` when the stream stopped before it.
    pub finish: Option<Vec<Event>>,
    pub failure: Option<Failure>,
}

/// The totals a run records from a stream (the engine's rules: empty deltas
/// are not content, the last usage wins field by field, the first error
/// event is the stream's error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub content: String,
    pub content_events: usize,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub finish_reason: Option<String>,
    pub done: bool,
    pub stream_error: Option<String>,
}

/// Whether an event counts as generated content (the engine's rule).
pub fn is_content(e: &Event) -> bool {
    match e {
        Event::Token(d) | Event::Reasoning(d) => !d.text.is_empty() || d.tokens.unwrap_or(0) > 0,
        _ => false,
    }
}

/// The content text in `events`.
pub fn content_of(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| is_content(e))
        .map(|e| match e {
            Event::Token(d) | Event::Reasoning(d) => d.text.as_str(),
            _ => "",
        })
        .collect()
}

impl Run {
    /// The events of message `i`, if it was fed.
    pub fn events(&self, i: usize) -> Option<&[Event]> {
        match self.frames.get(i) {
            Some(FrameResult::Events(e)) => Some(e),
            _ => None,
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        let fed = self.frames.iter().filter_map(|f| match f {
            FrameResult::Events(e) => Some(e.as_slice()),
            FrameResult::Sentinel => None,
        });
        for events in fed.chain(self.finish.as_deref()) {
            for e in events {
                match e {
                    Event::Token(d) | Event::Reasoning(d) => {
                        if is_content(e) {
                            s.content_events += 1;
                            s.content.push_str(&d.text);
                        }
                    }
                    Event::Usage(u) => {
                        s.prompt_tokens = u.prompt_tokens.or(s.prompt_tokens);
                        s.completion_tokens = u.completion_tokens.or(s.completion_tokens);
                    }
                    Event::Finish(r) => s.finish_reason = Some(r.clone()),
                    Event::Error(m) => {
                        s.stream_error.get_or_insert_with(|| m.clone());
                    }
                    Event::Done => s.done = true,
                }
            }
        }
        s.done |= self.frames.contains(&FrameResult::Sentinel);
        s
    }
}

/// Feed `chunks` (the transport's pieces of one body) through a fresh parser.
pub fn drive<'a>(
    adapter: &Adapter,
    framing: Framing,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Run {
    let mut run = Run::default();
    let mut parser = match adapter.new_parser() {
        Ok(p) => p,
        Err(e) => {
            run.failure = Some(Failure::plugin(Stage::NewParser, &e));
            return run;
        }
    };
    let mut decoder = Decoder::new(framing);
    for chunk in chunks {
        if let Err(e) = decoder.push(chunk) {
            run.failure = Some(framing_failure(&e));
            return run;
        }
        if !drain(&mut decoder, &mut parser, &mut run) {
            return run;
        }
    }
    if let Err(e) = decoder.finish() {
        run.failure = Some(framing_failure(&e));
        return run;
    }
    if !drain(&mut decoder, &mut parser, &mut run) {
        return run;
    }
    match parser.finish() {
        Ok(events) => run.finish = Some(events),
        Err(e) => run.failure = Some(Failure::plugin(Stage::Finish, &e)),
    }
    run
}

fn framing_failure(e: &llm_loadtest_sdk::framing::FramingError) -> Failure {
    Failure {
        stage: Stage::Framing,
        kind: FailureKind::Other,
        message: e.to_string(),
    }
}

/// Feed every completed message, as the engine does: the messages one chunk completed go to the
/// adapter in one batch (one `feed-batch` call for a 0.2 adapter), so the battery's splits (the
/// whole body in one chunk, one byte per chunk, every two-chunk split) also check that batches
/// of every size read as one message at a time does. False when the stream must stop; messages
/// after the one that reported a stream error are not recorded.
fn drain(decoder: &mut Decoder, parser: &mut StreamParser, run: &mut Run) -> bool {
    let mut batch = Batch::default();
    let mut order = Vec::new();
    while let Some(frame) = decoder.next_frame() {
        match frame {
            Frame::Done => order.push(None),
            Frame::Message(m) => {
                order.push(Some(batch.len()));
                batch.push(&m);
            }
        }
    }
    let fed = if batch.is_empty() {
        None
    } else {
        match parser.feed_batch(&batch) {
            Ok(fed) => Some(fed),
            Err(e) => {
                // The call failed as a whole (a trap, a deadline): it is charged to the first
                // message of the batch.
                let index = run.frames.len() + order.iter().position(Option::is_some).unwrap_or(0);
                run.failure = Some(Failure::plugin(Stage::Message(index), &e));
                return false;
            }
        }
    };
    let messages: Vec<&[Event]> = fed
        .as_ref()
        .map_or_else(Vec::new, |f| f.messages().collect());
    for slot in order {
        let Some(i) = slot else {
            run.frames.push(FrameResult::Sentinel);
            continue;
        };
        let Some(events) = messages.get(i) else {
            // The message the batch stopped at: its error is the batch's.
            let index = run.frames.len();
            if let Some(e) = fed.as_ref().and_then(|f| f.error.as_ref()) {
                run.failure = Some(Failure::plugin(Stage::Message(index), e));
            }
            return false;
        };
        let stream_error = events.iter().any(|e| matches!(e, Event::Error(_)));
        run.frames.push(FrameResult::Events(events.to_vec()));
        if stream_error {
            return false;
        }
    }
    true
}

/// A message cut to a readable length for a one-line report.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 160;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
