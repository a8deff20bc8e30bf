//! The protocol-free cases on an author's own recorded stream
//! (`plugin check --conformance my.wasm --sample body.sse`): a protocol the battery cannot
//! write (a custom server's) still gets the checks that need no knowledge of it. The sample
//! is cut where the host's own decoder sees a message end, so no case guesses at the format.
//!
//! - `sample-whole`: the body fed in one chunk gives no error and something (content, usage,
//!   a finish, an end); the baseline of the others.
//! - `sample-every-split`: every two-chunk split (spread evenly over at most
//!   [`MAX_SPLITS`] points for a long sample) and one-byte chunks give the baseline's events;
//!   the detail counts the splits that fall inside a UTF-8 character.
//! - `sample-one-mib`: the first content message with its text replaced by 1 MiB of the same
//!   kind of text gives one event with all of it (n/a when the text is not found verbatim in
//!   its message, e.g. escaped).
//! - `sample-truncated`: the body cut after each message gives no error and a prefix of the
//!   baseline's text: a stream the server cuts short never traps.
//! - `sample-garbage`: a non-JSON message after the first gives `err`, not a trap, and the
//!   next parser works.
use super::checks::{Verdict, difference, expect_parse_error};
use super::drive::{Run, drive, excerpt};
use super::report::{CaseResult, Outcome};
use super::script::GARBAGE;
use crate::plugin::{Adapter, Framing};
use llm_loadtest_sdk::framing::{Decoder, Frame};

/// Most two-chunk splits tried: a long sample is split at this many evenly spread points.
pub const MAX_SPLITS: usize = 4096;

const ONE_MIB: usize = 1024 * 1024;

/// The byte offsets where the host's decoder completes a message (or the `[DONE]`
/// sentinel), and each message's payload.
fn boundaries(framing: Framing, body: &[u8]) -> Vec<(usize, Option<Vec<u8>>)> {
    let mut decoder = Decoder::new(framing);
    let mut out = Vec::new();
    for (i, b) in body.iter().enumerate() {
        if decoder.push(std::slice::from_ref(b)).is_err() {
            break;
        }
        while let Some(frame) = decoder.next_frame() {
            out.push((
                i + 1,
                match frame {
                    Frame::Message(m) => Some(m.to_vec()),
                    Frame::Done => None,
                },
            ));
        }
    }
    out
}

/// The five sample cases on `body`, framed as `framing`.
pub fn cases(adapter: &Adapter, framing: Framing, body: &[u8]) -> Vec<CaseResult> {
    let base = drive(adapter, framing, [body]);
    let whole: Verdict = match &base.failure {
        Some(f) => Err(format!(
            "the recorded stream itself fails: {}",
            f.describe()
        )),
        None if base.summary() == Default::default() => Err(format!(
            "the adapter read nothing from the {} messages of the sample (no content, usage, \
             finish or end): it does not speak this protocol, and a run would count every \
             response as an incomplete stream",
            base.frames.len()
        )),
        None => {
            let s = base.summary();
            Ok(format!(
                "{} messages, {} content events, {} bytes of text, finish {:?}, done {}",
                base.frames.len(),
                s.content_events,
                s.content.len(),
                s.finish_reason,
                s.done
            ))
        }
    };
    let ok = whole.is_ok();
    let results: [(&'static str, Option<Verdict>); 5] = [
        ("sample-whole", Some(whole)),
        (
            "sample-every-split",
            ok.then(|| every_split(adapter, framing, body, &base)),
        ),
        (
            "sample-one-mib",
            if ok {
                one_mib(adapter, framing, body)
            } else {
                None
            },
        ),
        (
            "sample-truncated",
            ok.then(|| truncated(adapter, framing, body, &base)),
        ),
        (
            "sample-garbage",
            ok.then(|| garbage(adapter, framing, body)),
        ),
    ];
    results
        .into_iter()
        .map(|(name, v)| {
            let (outcome, detail) = match v {
                Some(Ok(d)) => (Outcome::Pass, d),
                Some(Err(d)) => (Outcome::Fail, d),
                None if !ok => (
                    Outcome::NotApplicable,
                    "not run: the sample-whole case failed".to_owned(),
                ),
                None => (
                    Outcome::NotApplicable,
                    "not run: no content message whose text appears verbatim in it".to_owned(),
                ),
            };
            CaseResult {
                protocol: "sample".into(),
                name,
                outcome,
                detail,
            }
        })
        .collect()
}

fn every_split(adapter: &Adapter, framing: Framing, body: &[u8], base: &Run) -> Verdict {
    let n = body.len();
    let points: Vec<usize> = if n <= MAX_SPLITS + 1 {
        (1..n).collect()
    } else {
        (1..=MAX_SPLITS).map(|i| i * n / (MAX_SPLITS + 1)).collect()
    };
    let inside_char = points
        .iter()
        .filter(|&&k| body.get(k).is_some_and(|b| (b & 0xC0) == 0x80))
        .count();
    for &k in &points {
        let run = drive(adapter, framing, [&body[..k], &body[k..]]);
        if &run != base {
            return Err(format!(
                "split after byte {k} of {n}: {}",
                difference(base, &run)
            ));
        }
    }
    let run = drive(adapter, framing, body.chunks(1));
    if &run != base {
        return Err(format!("one-byte chunks: {}", difference(base, &run)));
    }
    Ok(format!(
        "identical events at {} two-chunk splits of the {n}-byte body ({inside_char} inside a \
         UTF-8 character) and in one-byte chunks",
        points.len()
    ))
}

fn one_mib(adapter: &Adapter, framing: Framing, body: &[u8]) -> Option<Verdict> {
    // The first message whose content text appears verbatim in it.
    let bounds = boundaries(framing, body);
    let mut start = 0;
    for (end, payload) in &bounds {
        let (from, to) = (start, *end);
        start = *end;
        let Some(payload) = payload else { continue };
        let run = drive(adapter, framing, [&body[from..to]]);
        let text = run.summary().content;
        if text.is_empty() || !text.is_ascii() {
            continue;
        }
        let Some(at) = find(payload, text.as_bytes()) else {
            continue;
        };
        let long: String = text
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .chain(std::iter::once('x'))
            .cycle()
            .take(ONE_MIB)
            .collect();
        let mut message = payload[..at].to_vec();
        message.extend_from_slice(long.as_bytes());
        message.extend_from_slice(&payload[at + text.len()..]);
        // The message re-framed as the stream framed it: what came before its payload in
        // the body, the new payload, what came after.
        let raw = &body[from..to];
        let Some(p) = find(raw, payload) else {
            continue;
        };
        let mut framed = raw[..p].to_vec();
        framed.extend_from_slice(&message);
        framed.extend_from_slice(&raw[p + payload.len()..]);
        let run = drive(adapter, framing, [framed.as_slice()]);
        return Some(match (&run.failure, run.summary().content) {
            (Some(f), _) => Err(format!("a 1 MiB message: {}", f.describe())),
            (None, got) if got == long => Ok(format!(
                "message with {} bytes of text in place of {:?}: all of it in its events",
                long.len(),
                excerpt(&text)
            )),
            (None, got) => Err(format!(
                "a 1 MiB message gave {} bytes of text, not {}",
                got.len(),
                long.len()
            )),
        });
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn truncated(adapter: &Adapter, framing: Framing, body: &[u8], base: &Run) -> Verdict {
    let full = base.summary().content;
    let bounds = boundaries(framing, body);
    for (end, _) in &bounds {
        let run = drive(adapter, framing, [&body[..*end]]);
        if let Some(f) = &run.failure {
            return Err(format!("the body cut after byte {end}: {}", f.describe()));
        }
        let text = run.summary().content;
        if !full.starts_with(&text) {
            return Err(format!(
                "the body cut after byte {end} gave text {:?}, not a prefix of the whole's",
                excerpt(&text)
            ));
        }
    }
    Ok(format!(
        "cut after each of its {} messages: no error, and a prefix of the text each time",
        bounds.len()
    ))
}

fn garbage(adapter: &Adapter, framing: Framing, body: &[u8]) -> Verdict {
    let first_end = boundaries(framing, body).first().map_or(0, |(end, _)| *end);
    let junk = match framing {
        Framing::Sse => format!("data: {GARBAGE}\n\n"),
        Framing::Ndjson => format!("{GARBAGE}\n"),
        Framing::WholeBody => return Ok("n/a for a whole-body stream".to_owned()),
    };
    let mut spliced = body[..first_end].to_vec();
    spliced.extend_from_slice(junk.as_bytes());
    let run = drive(adapter, framing, [spliced.as_slice()]);
    let at = run
        .frames
        .len()
        .saturating_sub(usize::from(run.failure.is_none()));
    let detail = expect_parse_error(&run, at)?;
    let next = drive(adapter, framing, [body]);
    match next.failure {
        Some(f) => Err(format!(
            "{detail}; but the next parser fails: {}",
            f.describe()
        )),
        None => Ok(format!(
            "{detail}; the next parser then read the sample whole"
        )),
    }
}
