//! Every SGLang fixture in tests/fixtures/sglang replayed through the
//! adapter exactly as the host frames it: whole, split at every byte, and
//! byte by byte. Expected values were read from the fixtures themselves.

use llm_loadtest_plugin_sglang::Sglang;
use llm_loadtest_sdk::testing::{Replay, Summary, replay, replay_split_everywhere};
use llm_loadtest_sdk::{Event, Framing, Usage};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/sglang/",
            $name
        ))
    };
}

fn stream(body: &[u8]) -> Replay {
    replay_split_everywhere::<Sglang>(Framing::Sse, body).unwrap()
}

fn whole(body: &[u8]) -> Replay {
    replay::<Sglang>(Framing::WholeBody, body).unwrap()
}

fn usage(prompt: u32, completion: u32, cached: Option<u32>) -> Option<Usage> {
    Some(Usage {
        prompt_tokens: Some(prompt),
        completion_tokens: Some(completion),
        cached_tokens: cached,
    })
}

/// Every message carries meta_info, so there is one usage event per message.
fn summary(
    content: &str,
    content_events: usize,
    usage: Option<Usage>,
    usage_events: usize,
    finish: Option<&str>,
    done: bool,
) -> Summary {
    Summary {
        content: content.into(),
        content_events,
        usage,
        usage_events,
        finish_reason: finish.map(String::from),
        done,
        ..Summary::default()
    }
}

#[test]
fn doc_stream_cumulative_text_becomes_deltas() {
    let r = stream(fixture!("doc-stream.sse"));
    // Five messages; the second repeats the first's text (nothing new), so
    // four content events.
    assert_eq!(
        r.summary,
        summary(
            " The caf\u{e9} is \"open\"",
            4,
            usage(5, 6, Some(0)),
            5,
            Some("length"),
            true
        )
    );
    let tokens: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| matches!(e, Event::Token(_)))
        .collect();
    assert_eq!(
        tokens,
        [
            &Event::token(" The"),
            &Event::token(" caf\u{e9}"),
            &Event::token(" is"),
            &Event::token(" \"open\""),
        ]
    );
}

#[test]
fn doc_stream_string_finish_reason() {
    let r = stream(fixture!("doc-stream-string-finish.sse"));
    assert_eq!(
        r.summary,
        summary("Paris.", 2, usage(9, 2, None), 2, Some("stop"), true)
    );
}

#[test]
fn doc_stream_abort_is_an_error_and_a_finish() {
    let r = stream(fixture!("doc-stream-abort.sse"));
    assert_eq!(
        r.summary,
        Summary {
            errors: vec!["the server aborted the request: Abort in waiting queue".into()],
            ..summary(
                " Once upon",
                2,
                usage(12, 2, Some(8)),
                2,
                Some("abort"),
                true
            )
        }
    );
}

#[test]
fn doc_error_after_200() {
    let r = stream(fixture!("doc-error-after-200.sse"));
    assert_eq!(
        r.summary,
        Summary {
            errors: vec!["CUDA error: an illegal memory access was encountered".into()],
            ..summary(" Hello", 1, usage(3, 1, Some(0)), 1, None, true)
        }
    );
}

#[test]
fn doc_stream_output_deltas_are_read_as_deltas_after_the_first_shrink() {
    // A server started with --stream-output sends deltas. The second " the"
    // equals the text so far, which cumulative text would mean "nothing
    // new": that one token is lost. " cat" and " sat" are not extensions
    // (emitted whole); "." is shorter than the text so far, so the rest of
    // the stream is read as deltas.
    let r = stream(fixture!("doc-stream-output-deltas.sse"));
    assert_eq!(
        r.summary,
        summary(
            " the cat sat.",
            4,
            usage(4, 5, Some(0)),
            5,
            Some("stop"),
            true
        )
    );
}

#[test]
fn doc_nostream_body() {
    let r = whole(fixture!("doc-nostream.json"));
    assert_eq!(
        r.summary,
        summary(
            " The caf\u{e9} is \"open\"",
            1,
            usage(5, 6, Some(0)),
            1,
            Some("length"),
            false
        )
    );
}

// Captured from the built-in simulator (see tests/fixtures/sglang/README.md).

const SIM_TEXT: &str = " steady latency while batching keeps every request moving";

#[test]
fn sim_stream() {
    let r = stream(fixture!("sim-stream.sse"));
    assert_eq!(
        r.summary,
        summary(SIM_TEXT, 8, usage(5, 8, Some(0)), 8, Some("length"), true)
    );
}

#[test]
fn sim_stream_stopped_by_the_model() {
    let r = stream(fixture!("sim-stream-stop.sse"));
    assert_eq!(
        r.summary,
        summary(" reads", 1, usage(4, 1, Some(0)), 1, Some("stop"), true)
    );
}

#[test]
fn sim_nostream() {
    let r = whole(fixture!("sim-nostream.json"));
    assert_eq!(
        r.summary,
        summary(SIM_TEXT, 1, usage(5, 8, Some(0)), 1, Some("length"), false)
    );
}

#[test]
fn sim_error_after_200() {
    let r = stream(fixture!("sim-error-after-200.sse"));
    assert_eq!(
        r.summary,
        Summary {
            errors: vec!["simulated error after 200".into()],
            ..summary(
                " steady latency while batching keeps",
                5,
                usage(5, 5, Some(0)),
                5,
                None,
                true
            )
        }
    );
}

#[test]
fn sim_malformed_chunk_fails_the_feed() {
    let e = replay::<Sglang>(Framing::Sse, fixture!("sim-malformed.sse")).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("feed of message #5 ("), "{text}");
    assert!(
        text.contains("failed: not an SGLang /generate message: EOF"),
        "{text}"
    );
}
