//! Feed a recorded response body through an adapter the way a run does:
//! native framing, one `feed` per message, `[DONE]` handled by the host,
//! `finish` at the end, and the first error ending the stream.

use llm_loadtest_sdk::framing::{Decoder, Frame, Framing, FramingError};

use super::adapter::Adapter;
use super::error::PluginError;
use super::types::{Event, Usage};

/// One thing that happened during a replay, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayStep {
    /// An event the parser returned for message `frame` (`None`: `finish`).
    Event { frame: Option<usize>, event: Event },
    /// The host saw the `[DONE]` sentinel (never fed to the parser).
    DoneSentinel { frame: usize },
}

/// What a replay produced, summed up as a run would record it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub steps: Vec<ReplayStep>,
    /// Messages the framing produced (including a `[DONE]`).
    pub frames: usize,
    /// Generated text (token and reasoning deltas), concatenated.
    pub content: String,
    /// Token and reasoning events that carried content (empty deltas, like a
    /// chat stream's role-only first chunk, do not count).
    pub content_events: usize,
    /// The last usage reported (continuous usage repeats running totals).
    pub usage: Option<Usage>,
    pub usage_events: usize,
    pub finish_reason: Option<String>,
    /// Errors the server reported inside the stream (`error` events).
    pub stream_errors: Vec<String>,
    /// The stream was completed: a `done` event or the `[DONE]` sentinel.
    pub done: bool,
}

/// Why a replay stopped early; the report holds what came before.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("framing the body failed: {0}")]
    Framing(#[from] FramingError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// Replay `body` through a fresh parser of `adapter`, framed as `framing`.
/// A run stops a stream at its first `error` event or parser error; so does
/// this (the error is returned beside the report of what came before).
pub fn replay(
    adapter: &Adapter,
    framing: Framing,
    body: &[u8],
) -> (ReplayReport, Option<ReplayError>) {
    let mut report = ReplayReport::default();
    let err = run(adapter, framing, body, &mut report).err();
    (report, err)
}

fn run(
    adapter: &Adapter,
    framing: Framing,
    body: &[u8],
    report: &mut ReplayReport,
) -> Result<(), ReplayError> {
    let mut parser = adapter.new_parser()?;
    let mut decoder = Decoder::new(framing);
    decoder.push(body)?;
    decoder.finish()?;
    while let Some(frame) = decoder.next_frame() {
        let index = report.frames;
        report.frames += 1;
        match frame {
            Frame::Done => {
                report.done = true;
                report.steps.push(ReplayStep::DoneSentinel { frame: index });
            }
            Frame::Message(m) => {
                for event in parser.feed(&m)? {
                    report.apply(Some(index), event);
                }
                if !report.stream_errors.is_empty() {
                    return Ok(());
                }
            }
        }
    }
    for event in parser.finish()? {
        report.apply(None, event);
    }
    Ok(())
}

impl ReplayReport {
    fn apply(&mut self, frame: Option<usize>, event: Event) {
        match &event {
            Event::Token(d) | Event::Reasoning(d) => {
                if !d.text.is_empty() || d.tokens.unwrap_or(0) > 0 {
                    self.content_events += 1;
                    self.content.push_str(&d.text);
                }
            }
            Event::Usage(u) => {
                self.usage_events += 1;
                self.usage = Some(u.clone());
            }
            Event::Finish(reason) => self.finish_reason = Some(reason.clone()),
            Event::Error(message) => self.stream_errors.push(message.clone()),
            Event::Done => self.done = true,
        }
        self.steps.push(ReplayStep::Event { frame, event });
    }
}
