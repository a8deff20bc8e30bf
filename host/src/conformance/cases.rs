//! The cases, each written in one dialect and checked message by message.

use super::checks::{
    Verdict, check_complete, describe_event, describe_events, difference, expect_parse_error,
};
use super::drive::{FailureKind, Run, Stage, drive, excerpt, is_content};
use super::protocol::Dialect;
use super::report::{CaseResult, Outcome};
use super::script::{SERVER_ERROR, Script, Writer};
use crate::plugin::{Adapter, Event, Framing};

/// The text of the normal stream, one piece per message. No piece starts
/// with the first, so an adapter that must guess whether text is cumulative
/// (Triton's) sees deltas at once.
const PIECES: [&str; 14] = [
    "Hello", ",", " world", "!", " The", " quick", " brown", " fox", " jumps", " over", " the",
    " lazy", " dog", ".",
];

/// One MiB: the size of the long-line case's text.
pub const ONE_MIB: usize = 1024 * 1024;

/// Runs the cases in one dialect.
pub struct Battery<'a> {
    pub adapter: &'a Adapter,
    pub dialect: Dialect,
    pub framing: Framing,
}

impl Battery<'_> {
    /// Every case, in order.
    pub fn run_all(&self) -> Vec<CaseResult> {
        type Case<'b> = (&'static str, fn(&Battery<'b>) -> Option<Verdict>);
        let cases: [Case<'_>; 10] = [
            ("normal-stream", |b| Some(b.normal_stream())),
            ("split-every-byte", |b| Some(b.split_every_byte())),
            ("empty-deltas", |b| Some(b.empty_deltas())),
            ("role-only-chunk", Battery::role_only),
            ("usage-only-chunk", Battery::usage_only),
            ("error-after-200", |b| Some(b.error_after_200())),
            ("utf8-split", |b| Some(b.utf8_split())),
            ("one-mib-line", |b| Some(b.one_mib_line())),
            ("no-finish", |b| Some(b.no_finish())),
            ("garbage", |b| Some(b.garbage())),
        ];
        cases
            .iter()
            .map(|(name, case)| {
                let (outcome, detail) = match case(self) {
                    Some(Ok(d)) => (Outcome::Pass, d),
                    Some(Err(d)) => (Outcome::Fail, d),
                    None => (Outcome::NotApplicable, self.not_applicable(name)),
                };
                CaseResult {
                    protocol: self.dialect.name().to_owned(),
                    name,
                    outcome,
                    detail,
                }
            })
            .collect()
    }

    fn not_applicable(&self, case: &str) -> String {
        match case {
            "role-only-chunk" => format!("{} has no role-only message", self.dialect.name()),
            "usage-only-chunk" => format!("{} reports no token counts", self.dialect.name()),
            _ => "not run".to_owned(),
        }
    }

    fn run_whole(&self, script: &Script) -> (Vec<u8>, Run) {
        let body = script.body(self.framing);
        let run = drive(self.adapter, self.framing, [body.as_slice()]);
        (body, run)
    }

    fn normal_script(&self) -> Script {
        let mut w = Writer::new(self.dialect);
        w.role_if_chat();
        for p in PIECES {
            w.text(p);
        }
        w.end();
        w.finish()
    }

    /// 1. A complete stream: the right text, one content event per piece,
    ///    the usage, the finish reason and a completion marker.
    fn normal_stream(&self) -> Verdict {
        let script = self.normal_script();
        let (_, run) = self.run_whole(&script);
        check_complete(self.dialect, &script, &run)
    }

    /// 2. The normal stream cut by the transport at every byte boundary
    ///    (two chunks each), and in one-byte chunks: the same events.
    fn split_every_byte(&self) -> Verdict {
        let script = self.normal_script();
        let (body, base) = self.run_whole(&script);
        check_complete(self.dialect, &script, &base)
            .map_err(|e| format!("the unsplit stream already fails: {e}"))?;
        self.same_at_every_split(&body, &base)?;
        Ok(format!(
            "identical events for all {} two-chunk splits of the {}-byte body and for \
             one-byte chunks",
            body.len() - 1,
            body.len()
        ))
    }

    fn same_at_every_split(&self, body: &[u8], base: &Run) -> Result<(), String> {
        for k in 1..body.len() {
            let run = drive(self.adapter, self.framing, [&body[..k], &body[k..]]);
            if &run != base {
                return Err(format!(
                    "split after byte {k} of {}: {}",
                    body.len(),
                    difference(base, &run)
                ));
            }
        }
        let run = drive(self.adapter, self.framing, body.chunks(1));
        if &run != base {
            return Err(format!("one-byte chunks: {}", difference(base, &run)));
        }
        Ok(())
    }

    /// 3. Messages with empty text give no content events.
    fn empty_deltas(&self) -> Verdict {
        let mut w = Writer::new(self.dialect);
        w.role_if_chat();
        for p in ["Hello", "", " world", "", "", "!"] {
            w.text(p);
        }
        w.end();
        let script = w.finish();
        let (_, run) = self.run_whole(&script);
        let summary = check_complete(self.dialect, &script, &run)?;
        Ok(format!("3 empty deltas gave no content; {summary}"))
    }

    /// 4. A chat's role-only opening message gives no content event.
    fn role_only(&self) -> Option<Verdict> {
        if !self.dialect.has_role_message() {
            return None;
        }
        let mut w = Writer::new(self.dialect);
        w.role();
        w.text("Hi");
        w.text(" there");
        w.end();
        let script = w.finish();
        let (_, run) = self.run_whole(&script);
        Some(check_complete(self.dialect, &script, &run).map(|summary| {
            format!(
                "the role-only message gave {}; {summary}",
                describe_events(run.events(0).unwrap_or_default())
            )
        }))
    }

    /// 5. A message with token counts and no text gives a usage event and no
    ///    content.
    fn usage_only(&self) -> Option<Verdict> {
        if !self.dialect.has_usage() {
            return None;
        }
        let script = self.normal_script();
        let (_, run) = self.run_whole(&script);
        let targets: Vec<(usize, (u32, u32))> = script
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.text.is_empty() && !m.role_only)
            .filter_map(|(i, m)| m.usage.map(|u| (i, u)))
            .collect();
        let verdict = (|| {
            if let Some(f) = &run.failure {
                return Err(f.describe());
            }
            let mut seen = Vec::new();
            for (i, (prompt, completion)) in &targets {
                let events = run
                    .events(*i)
                    .ok_or_else(|| format!("message {i} (usage only) was never fed"))?;
                if let Some(e) = events.iter().find(|e| is_content(e)) {
                    return Err(format!(
                        "message {i} (usage only) gave a content event: {}",
                        describe_event(e)
                    ));
                }
                let usage = events.iter().find_map(|e| match e {
                    Event::Usage(u) => Some(u),
                    _ => None,
                });
                let Some(u) = usage else {
                    return Err(format!(
                        "message {i} (usage only) gave no usage event: {}",
                        describe_events(events)
                    ));
                };
                if (u.prompt_tokens, u.completion_tokens) != (Some(*prompt), Some(*completion)) {
                    return Err(format!(
                        "message {i}: usage prompt {:?} completion {:?}, the server said \
                         {prompt} and {completion}",
                        u.prompt_tokens, u.completion_tokens
                    ));
                }
                seen.push(format!("message {i}: usage {prompt}+{completion}"));
            }
            Ok(format!("{}, no content", seen.join(", ")))
        })();
        Some(verdict)
    }

    /// 6. A server error inside a 200 stream is an `error` event, which the
    ///    host records as a stream error. An `err` from `feed` would be
    ///    recorded as a parse error: the adapter misunderstanding the server,
    ///    not the server failing, so it fails this case.
    fn error_after_200(&self) -> Verdict {
        let mut w = Writer::new(self.dialect);
        w.role_if_chat();
        w.text("Hello");
        w.text(" world");
        w.error();
        let script = w.finish();
        let at = script
            .msgs
            .iter()
            .position(|m| m.error)
            .expect("the script has an error message");
        let (_, run) = self.run_whole(&script);
        if let Some(f) = &run.failure {
            return Err(match (f.kind, f.stage) {
                (FailureKind::Parse, Stage::Message(i)) if i == at => format!(
                    "feed returned err on the error message, so the host records a parse \
                     error instead of the server's stream error: {}",
                    excerpt(&f.message)
                ),
                _ => f.describe(),
            });
        }
        let events = run
            .events(at)
            .ok_or_else(|| format!("message {at} (the error) was never fed"))?;
        let Some(message) = events.iter().find_map(|e| match e {
            Event::Error(m) => Some(m),
            _ => None,
        }) else {
            return Err(format!(
                "message {at} (the server's error) gave no error event: {}",
                describe_events(events)
            ));
        };
        if !message.contains(SERVER_ERROR) {
            return Err(format!(
                "the error event {:?} does not carry the server's message {SERVER_ERROR:?}",
                excerpt(message)
            ));
        }
        let summary = run.summary();
        if summary.content != "Hello world" {
            return Err(format!(
                "the text before the error is {:?}, expected \"Hello world\"",
                excerpt(&summary.content)
            ));
        }
        Ok(format!(
            "error event {:?} at message {at}, after {:?}",
            excerpt(message),
            summary.content
        ))
    }

    /// 7. Multi-byte UTF-8 (raw and `\u`-escaped) split by the transport at
    ///    every byte: the exact text every time.
    fn utf8_split(&self) -> Verdict {
        let mut w = Writer::new(self.dialect);
        w.role_if_chat();
        for p in [
            "caf",
            "\u{e9}",
            " \u{65e5}\u{672c}",
            "\u{8a9e}",
            " \u{1f389}",
        ] {
            w.text(p);
        }
        w.text_escaped(" \u{f1} \u{1f600}", true);
        w.end();
        let script = w.finish();
        let (body, base) = self.run_whole(&script);
        check_complete(self.dialect, &script, &base)?;
        self.same_at_every_split(&body, &base)?;
        Ok(format!(
            "exact text {:?} whole, at all {} two-chunk splits and in one-byte chunks",
            script.text(),
            body.len() - 1
        ))
    }

    /// 8. One message with 1 MiB of text: one content event with all of it.
    fn one_mib_line(&self) -> Verdict {
        let mut text = String::with_capacity(ONE_MIB);
        let words = ["lorem ", "ipsum ", "dolor ", "sit ", "amet "];
        for w in words.iter().cycle() {
            if text.len() + w.len() > ONE_MIB {
                break;
            }
            text.push_str(w);
        }
        while text.len() < ONE_MIB {
            text.push('.');
        }
        let mut w = Writer::new(self.dialect);
        w.role_if_chat();
        w.text(&text);
        w.end();
        let script = w.finish();
        let (body, run) = self.run_whole(&script);
        check_complete(self.dialect, &script, &run)?;
        Ok(format!(
            "one content event with all {} bytes (a {}-byte body)",
            text.len(),
            body.len()
        ))
    }

    /// 9. A body that ends before the server's end marker: `finish` returns
    ///    ok, nothing traps, and the adapter does not call the cut stream
    ///    complete, so the host records it as incomplete.
    fn no_finish(&self) -> Verdict {
        let mut w = Writer::new(self.dialect);
        w.role_if_chat();
        for p in ["Hello", ",", " world"] {
            w.text(p);
        }
        let script = w.finish();
        let (_, run) = self.run_whole(&script);
        if let Some(f) = &run.failure {
            return Err(f.describe());
        }
        let finish = run.finish.as_deref().unwrap_or_default();
        let summary = run.summary();
        if summary.content != script.text() {
            return Err(format!(
                "text {:?}, expected {:?}",
                excerpt(&summary.content),
                script.text()
            ));
        }
        if self.dialect.has_end_marker() && (summary.done || summary.finish_reason.is_some()) {
            return Err(format!(
                "the cut stream was reported complete (finish {:?}, done {}): a run would \
                 count a truncated response as a success",
                summary.finish_reason, summary.done
            ));
        }
        let verdict = if summary.done {
            "done (the protocol has no end marker)"
        } else if summary.stream_error.is_some() {
            "a stream error"
        } else {
            "no completion, so the host records the stream as incomplete"
        };
        Ok(format!(
            "finish() returned ok with {}; {verdict}",
            describe_events(finish)
        ))
    }

    /// 10. A message that is not JSON: `err` from `feed` (a parse error, not
    ///     a trap), and the next parser on the same adapter still works.
    fn garbage(&self) -> Verdict {
        let mut w = Writer::new(self.dialect);
        w.role_if_chat();
        w.text("Hello");
        w.garbage();
        let script = w.finish();
        let at = script.msgs.iter().position(|m| m.garbage).expect("garbage");
        let (_, run) = self.run_whole(&script);
        let detail = expect_parse_error(&run, at)?;
        let normal = self.normal_script();
        let (_, after) = self.run_whole(&normal);
        check_complete(self.dialect, &normal, &after)
            .map_err(|e| format!("{detail}; but the next parser fails: {e}"))?;
        Ok(format!(
            "{detail}; a new parser then read the normal stream"
        ))
    }
}
