//! Checking what an adapter made of a crafted stream, message by message,
//! and saying what went wrong in one line.

use super::drive::{FailureKind, Run, Stage, content_of, excerpt};
use super::protocol::Dialect;
use super::script::Script;
use crate::plugin::Event;

/// A case's result: a one-line summary, or why it failed.
pub type Verdict = Result<String, String>;

/// Checks a complete stream against its script; returns a one-line
/// summary.
pub fn check_complete(dialect: Dialect, script: &Script, run: &Run) -> Verdict {
    if let Some(f) = &run.failure {
        return Err(f.describe());
    }
    if run.frames.len() != script.msgs.len() {
        return Err(format!(
            "the body framed into {} messages, the script has {}",
            run.frames.len(),
            script.msgs.len()
        ));
    }
    for (i, m) in script.msgs.iter().enumerate() {
        if let Some(events) = run.events(i) {
            let got = content_of(events);
            if got != m.text {
                return Err(format!(
                    "message {i}: text {:?}, expected {:?} ({})",
                    excerpt(&got),
                    excerpt(&m.text),
                    describe_events(events)
                ));
            }
        }
    }
    let s = run.summary();
    if let Some(e) = &s.stream_error {
        return Err(format!("an error event: {}", excerpt(e)));
    }
    if s.content != script.text() {
        return Err(format!(
            "text {:?}, expected {:?}",
            excerpt(&s.content),
            excerpt(&script.text())
        ));
    }
    if s.content_events != script.content_messages() {
        return Err(format!(
            "{} content events, expected {} (one per message with new text)",
            s.content_events,
            script.content_messages()
        ));
    }
    let mut parts = vec![format!(
        "text {:?} in {} content events",
        excerpt(&s.content),
        s.content_events
    )];
    if dialect.has_usage() {
        let want = script.usage();
        let got = s.prompt_tokens.zip(s.completion_tokens);
        if got != want {
            return Err(format!(
                "usage prompt {:?} completion {:?}, the server said {want:?}",
                s.prompt_tokens, s.completion_tokens
            ));
        }
        if let Some((p, c)) = got {
            parts.push(format!("usage {p}+{c}"));
        }
    }
    if let Some(want) = dialect.finish_reason() {
        if s.finish_reason.as_deref() != Some(want) {
            return Err(format!(
                "finish reason {:?}, the server said {want:?}",
                s.finish_reason
            ));
        }
        parts.push(format!("finish {want:?}"));
    }
    if !s.done && s.finish_reason.is_none() {
        return Err(
            "no finish reason and no done: a run would record the complete \
                    stream as cut short"
                .to_owned(),
        );
    }
    if s.done {
        parts.push("done".to_owned());
    }
    Ok(parts.join(", "))
}

/// Message `at` must have failed `feed` with `err` (not a trap); returns
/// the one-line description.
pub fn expect_parse_error(run: &Run, at: usize) -> Verdict {
    match &run.failure {
        Some(f) if f.stage == Stage::Message(at) && f.kind == FailureKind::Parse => Ok(format!(
            "message {at} (not JSON) gave err from feed: {}",
            excerpt(&f.message)
        )),
        Some(f) if f.kind == FailureKind::Trap => Err(format!(
            "{} (a trap loses every stream on that instance; garbage must be an err)",
            f.describe()
        )),
        Some(f) => Err(format!(
            "expected err from feed on message {at} (the garbage), got: {}",
            f.describe()
        )),
        None => Err(format!(
            "the garbage message was accepted ({}): a run would drop it silently",
            describe_events(run.events(at).unwrap_or_default())
        )),
    }
}

pub fn describe_event(e: &Event) -> String {
    match e {
        Event::Token(d) => format!("token {:?}", excerpt(&d.text)),
        Event::Reasoning(d) => format!("reasoning {:?}", excerpt(&d.text)),
        Event::Usage(u) => format!(
            "usage {:?}+{:?}",
            u.prompt_tokens.unwrap_or_default(),
            u.completion_tokens.unwrap_or_default()
        ),
        Event::Finish(r) => format!("finish {r:?}"),
        Event::Error(m) => format!("error {:?}", excerpt(m)),
        Event::Done => "done".to_owned(),
    }
}

/// Events as a short list for a report line.
pub fn describe_events(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events".to_owned();
    }
    let list: Vec<String> = events.iter().take(6).map(describe_event).collect();
    let more = events.len().saturating_sub(6);
    if more > 0 {
        format!("events [{}, … {more} more]", list.join(", "))
    } else {
        format!("events [{}]", list.join(", "))
    }
}

/// Where two runs of the same body first differ.
pub fn difference(want: &Run, got: &Run) -> String {
    for (i, (a, b)) in want.frames.iter().zip(&got.frames).enumerate() {
        if a != b {
            return format!("message {i} gave {b:?}, unsplit {a:?}");
        }
    }
    if want.frames.len() != got.frames.len() {
        return format!(
            "{} messages, unsplit {}",
            got.frames.len(),
            want.frames.len()
        );
    }
    if want.failure != got.failure {
        return format!(
            "failure {:?}, unsplit {:?}",
            got.failure.as_ref().map(|f| f.describe()),
            want.failure.as_ref().map(|f| f.describe())
        );
    }
    format!("finish() gave {:?}, unsplit {:?}", got.finish, want.finish)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::drive::{Failure, FrameResult};
    use crate::conformance::script::{PROMPT_TOKENS, Writer};
    use crate::plugin::{TokenDelta, Usage};

    fn token(t: &str) -> Event {
        Event::Token(TokenDelta {
            text: t.into(),
            tokens: None,
        })
    }

    fn usage(p: u32, c: u32) -> Event {
        Event::Usage(Usage {
            prompt_tokens: Some(p),
            completion_tokens: Some(c),
            cached_tokens: None,
        })
    }

    /// "Hello", " world" and the end, and what a correct adapter makes of it.
    fn script_and_good_run() -> (Script, Run) {
        let mut w = Writer::new(Dialect::OpenAiCompletions);
        w.text("Hello");
        w.text(" world");
        w.end();
        let run = Run {
            frames: vec![
                FrameResult::Events(vec![token("Hello")]),
                FrameResult::Events(vec![token(" world")]),
                FrameResult::Events(vec![Event::Finish("length".into())]),
                FrameResult::Events(vec![usage(PROMPT_TOKENS, 2)]),
                FrameResult::Sentinel,
            ],
            finish: Some(Vec::new()),
            failure: None,
        };
        (w.finish(), run)
    }

    fn check(run: &Run) -> Verdict {
        let (script, _) = script_and_good_run();
        check_complete(Dialect::OpenAiCompletions, &script, run)
    }

    #[test]
    fn a_correct_run_passes() {
        let (_, run) = script_and_good_run();
        let summary = check(&run).unwrap();
        assert!(
            summary.contains("usage 9+2") && summary.contains("done"),
            "{summary}"
        );
    }

    #[test]
    fn text_held_back_until_finish_fails() {
        let (_, mut run) = script_and_good_run();
        run.frames[0] = FrameResult::Events(Vec::new());
        run.frames[1] = FrameResult::Events(Vec::new());
        run.finish = Some(vec![token("Hello world")]);
        let e = check(&run).unwrap_err();
        assert!(e.starts_with("message 0: text \"\""), "{e}");
    }

    #[test]
    fn a_message_split_into_two_events_fails() {
        let (_, mut run) = script_and_good_run();
        run.frames[0] = FrameResult::Events(vec![token("Hel"), token("lo")]);
        let e = check(&run).unwrap_err();
        assert!(e.contains("3 content events, expected 2"), "{e}");
    }

    #[test]
    fn wrong_usage_or_missing_finish_fails() {
        let (_, mut run) = script_and_good_run();
        run.frames[3] = FrameResult::Events(vec![usage(PROMPT_TOKENS, 3)]);
        assert!(check(&run).unwrap_err().contains("usage"));
        let (_, mut run) = script_and_good_run();
        run.frames[2] = FrameResult::Events(Vec::new());
        assert!(check(&run).unwrap_err().contains("finish reason None"));
    }

    #[test]
    fn garbage_must_be_a_parse_error_on_its_own_message() {
        let failed = |stage, kind| Run {
            failure: Some(Failure {
                stage,
                kind,
                message: "x".into(),
            }),
            ..Run::default()
        };
        assert!(expect_parse_error(&failed(Stage::Message(1), FailureKind::Parse), 1).is_ok());
        let trap = expect_parse_error(&failed(Stage::Message(1), FailureKind::Trap), 1);
        assert!(trap.unwrap_err().contains("trapped"));
        let early = expect_parse_error(&failed(Stage::Message(0), FailureKind::Parse), 1);
        assert!(
            early
                .unwrap_err()
                .contains("expected err from feed on message 1")
        );
        let accepted = Run {
            frames: vec![FrameResult::Events(vec![token("ok")])],
            finish: Some(Vec::new()),
            failure: None,
        };
        assert!(
            expect_parse_error(&accepted, 0)
                .unwrap_err()
                .contains("accepted")
        );
    }
}
