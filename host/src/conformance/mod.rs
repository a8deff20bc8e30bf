//! A fixed conformance battery for server adapters
//! (`llm-loadtest plugin check --conformance FILE.wasm|NAME`).
//!
//! How it works:
//! - **Protocol.** The battery cannot know a custom adapter's protocol, so it
//!   asks the adapter to build a streaming request for a text prompt and for
//!   a chat and places each by its endpoint ([`protocol`]): OpenAI
//!   completions or chat, SGLang, Ollama generate or chat, Triton, TGI. An
//!   adapter may speak two dialects (openai: completions for text, chat for
//!   chats); every case runs in each. A request whose framing is not how
//!   that endpoint streams is not placed.
//! - **Bodies.** Each case describes a stream in protocol-free steps and
//!   [`script`] writes it as that dialect's server would (shapes from real
//!   captures and the built-in simulator), framed as the adapter's request
//!   says, recording what every message carries.
//! - **Feeding.** [`drive`] feeds the body as a run does: transport chunks
//!   through the host's own SSE / NDJSON decoder, one `feed` per message,
//!   `[DONE]` kept by the host, `finish` at the end, stopping at the first
//!   error. Checks are per message (text must arrive with the message that
//!   carried it, or a run would time it wrongly), then totals, counted by the
//!   engine's rules.
//! - **Cases.** `normal-stream`, `split-every-byte` (every two-chunk split
//!   and one-byte chunks give identical events), `empty-deltas`,
//!   `role-only-chunk` (chat dialects), `usage-only-chunk` (dialects with
//!   token counts), `error-after-200` (must be an `error` event: the host
//!   records that as the server's stream error, while an `err` from `feed`
//!   is recorded as a parse error, so an `err` fails), `utf8-split`,
//!   `one-mib-line`, `no-finish` (`finish` is ok, and a cut stream is not
//!   reported complete where the protocol has an end marker), `garbage`
//!   (`err`, not a trap, and the next parser works). A first `protocol`
//!   case reports the placement.
//! - **Unknown protocols.** Only the protocol-free cases run (`no-finish` on
//!   an empty stream, `garbage`); the others are reported `n/a` with
//!   "not run: unknown protocol", and the report warns, so they never pass
//!   silently.
//!
//! Cost: the two split cases feed about one body per byte of a ~2–4 KB
//! stream (a few thousand short replays per dialect); the 1 MiB case is fed
//! once, unsplit.

mod cases;
mod checks;
mod drive;
mod protocol;
mod report;
mod sample;
mod script;

pub use protocol::Dialect;
pub use report::{CaseResult, ConformanceReport, Outcome, UNKNOWN_PROTOCOL};

use cases::Battery;
use checks::{describe_events, expect_parse_error};
use drive::drive;
use protocol::{Detection, ProbeResult};
use script::GARBAGE;

use crate::plugin::{Adapter, Framing};

/// The cases that need no protocol knowledge, run for unknown protocols.
const PROTOCOL_FREE: [&str; 2] = ["no-finish", "garbage"];

/// The cases that need a known protocol, in battery order.
const PROTOCOL_BOUND: [&str; 8] = [
    "normal-stream",
    "split-every-byte",
    "empty-deltas",
    "role-only-chunk",
    "usage-only-chunk",
    "error-after-200",
    "utf8-split",
    "one-mib-line",
];

/// The battery, then the protocol-free cases on `sample`, a response body the adapter's
/// author recorded from their own server (see [`sample`]).
pub fn run_battery_with_sample(adapter: &Adapter, sample: &[u8]) -> ConformanceReport {
    let mut report = run_battery(adapter);
    let framing = protocol::detect(adapter).fallback_framing(adapter.info().framing);
    report.cases.extend(sample::cases(adapter, framing, sample));
    report
}

/// Run the whole battery through `adapter`.
pub fn run_battery(adapter: &Adapter) -> ConformanceReport {
    let identity = adapter.identity();
    let detection = protocol::detect(adapter);
    let mut cases = vec![protocol_case(&detection)];
    let dialects = detection.dialects();
    if dialects.is_empty() {
        let framing = detection.fallback_framing(adapter.info().framing);
        cases.extend(PROTOCOL_BOUND.iter().map(|name| CaseResult {
            protocol: "unknown".into(),
            name,
            outcome: Outcome::NotApplicable,
            detail: UNKNOWN_PROTOCOL.into(),
        }));
        cases.extend(protocol_free_cases(adapter, framing));
    } else {
        for (dialect, framing) in dialects {
            let battery = Battery {
                adapter,
                dialect,
                framing,
            };
            cases.extend(battery.run_all());
        }
    }
    ConformanceReport {
        adapter: format!("{} {}", identity.name, identity.version),
        protocols: detection.probes.iter().map(describe_probe).collect(),
        cases,
    }
}

fn describe_probe(p: &protocol::Probe) -> String {
    match &p.result {
        ProbeResult::Known {
            dialect,
            path,
            framing,
        } => format!(
            "{}: POST {path} ({} framing) -> {}",
            p.prompt_kind,
            framing.name(),
            dialect.name()
        ),
        ProbeResult::Unknown { why, .. } => format!("{}: unknown protocol: {why}", p.prompt_kind),
        ProbeResult::Failed { message, .. } => {
            format!("{}: build-request failed: {message}", p.prompt_kind)
        }
    }
}

/// Case 0: the requests the adapter builds, and what they were placed as.
fn protocol_case(d: &Detection) -> CaseResult {
    let trapped = d.probes.iter().find_map(|p| match &p.result {
        ProbeResult::Failed {
            message,
            trapped: true,
        } => Some(message.clone()),
        _ => None,
    });
    let all_failed = d
        .probes
        .iter()
        .all(|p| matches!(p.result, ProbeResult::Failed { .. }));
    let dialects = d.dialects();
    let (outcome, detail) = if let Some(message) = trapped {
        (
            Outcome::Fail,
            format!("build-request trapped: {}", drive::excerpt(&message)),
        )
    } else if all_failed {
        (
            Outcome::Fail,
            "build-request failed for both a text prompt and a chat".to_owned(),
        )
    } else if dialects.is_empty() {
        (
            Outcome::NotApplicable,
            "unknown protocol: only protocol-free cases run".to_owned(),
        )
    } else {
        let names: Vec<&str> = dialects.iter().map(|(d, _)| d.name()).collect();
        (Outcome::Pass, format!("speaks {}", names.join(" and ")))
    };
    CaseResult {
        protocol: "-".into(),
        name: "protocol",
        outcome,
        detail,
    }
}

/// `no-finish` and `garbage` without protocol knowledge.
fn protocol_free_cases(adapter: &Adapter, framing: Framing) -> Vec<CaseResult> {
    let empty_stream = || -> Result<String, String> {
        let mut parser = adapter
            .new_parser()
            .map_err(|e| format!("creating a parser failed: {e}"))?;
        let events = parser
            .finish()
            .map_err(|e| format!("finish() on an empty stream failed: {e}"))?;
        Ok(format!(
            "finish() on an empty stream returned ok with {}",
            describe_events(&events)
        ))
    };
    let garbage = || -> Result<String, String> {
        let body = match framing {
            Framing::Sse => format!("data: {GARBAGE}\n\n"),
            Framing::Ndjson => format!("{GARBAGE}\n"),
            Framing::WholeBody => GARBAGE.to_owned(),
        };
        let run = drive(adapter, framing, [body.as_bytes()]);
        let detail = expect_parse_error(&run, 0)?;
        empty_stream().map_err(|e| format!("{detail}; but the next parser fails: {e}"))?;
        Ok(format!("{detail}; a new parser then finished cleanly"))
    };
    let results = [empty_stream(), garbage()];
    PROTOCOL_FREE
        .iter()
        .zip(results)
        .map(|(name, r)| {
            let (outcome, detail) = match r {
                Ok(d) => (Outcome::Pass, d),
                Err(d) => (Outcome::Fail, d),
            };
            CaseResult {
                protocol: "unknown".into(),
                name,
                outcome,
                detail,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::HttpRequest;
    use protocol::Probe;

    fn probe(kind: &'static str, path: &str, framing: Framing) -> Probe {
        Probe {
            prompt_kind: kind,
            result: protocol::classify(&HttpRequest {
                method: "POST".into(),
                path: path.into(),
                headers: Vec::new(),
                body: b"{}".to_vec(),
                framing,
            }),
        }
    }

    #[test]
    fn an_unknown_protocol_is_reported_not_passed() {
        let d = Detection {
            probes: vec![probe("text prompt", "/api/complete", Framing::Ndjson)],
        };
        let case = protocol_case(&d);
        assert_eq!(case.outcome, Outcome::NotApplicable);
        assert!(case.detail.contains("unknown protocol"), "{}", case.detail);
        assert_eq!(d.fallback_framing(Framing::Sse), Framing::Ndjson);
        let report = ConformanceReport {
            adapter: "x 1".into(),
            protocols: d.probes.iter().map(describe_probe).collect(),
            cases: PROTOCOL_BOUND
                .iter()
                .map(|name| CaseResult {
                    protocol: "unknown".into(),
                    name,
                    outcome: Outcome::NotApplicable,
                    detail: UNKNOWN_PROTOCOL.into(),
                })
                .collect(),
        };
        let text = report.to_string();
        assert!(text.contains("warning: 8 cases were not run"), "{text}");
        assert!(text.contains("/api/complete"), "{text}");
        assert!(report.passed());
    }

    #[test]
    fn failed_or_trapped_requests_fail_the_protocol_case() {
        let failed = |trapped| Probe {
            prompt_kind: "text prompt",
            result: ProbeResult::Failed {
                message: "boom".into(),
                trapped,
            },
        };
        let d = Detection {
            probes: vec![failed(false), failed(false)],
        };
        assert_eq!(protocol_case(&d).outcome, Outcome::Fail);
        let d = Detection {
            probes: vec![
                probe("text prompt", "/v1/completions", Framing::Sse),
                failed(true),
            ],
        };
        let case = protocol_case(&d);
        assert_eq!(case.outcome, Outcome::Fail);
        assert!(case.detail.contains("trapped"), "{}", case.detail);
        let d = Detection {
            probes: vec![
                probe("text prompt", "/v1/completions", Framing::Sse),
                failed(false),
            ],
        };
        assert_eq!(protocol_case(&d).outcome, Outcome::Pass);
    }
}
