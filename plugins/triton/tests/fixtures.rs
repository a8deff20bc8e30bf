//! Every Triton fixture in tests/fixtures/triton replayed through the
//! adapter exactly as the host frames it: whole, split at every byte, and
//! byte by byte. Expected values were read from the fixtures themselves.

use llm_loadtest_plugin_triton::Triton;
use llm_loadtest_sdk::testing::{Replay, Summary, replay, replay_split_everywhere};
use llm_loadtest_sdk::{Event, Framing};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/triton/",
            $name
        ))
    };
}

fn stream(body: &[u8]) -> Replay {
    replay_split_everywhere::<Triton>(Framing::Sse, body).unwrap()
}

fn whole(body: &[u8]) -> Replay {
    replay::<Triton>(Framing::WholeBody, body).unwrap()
}

/// Triton sends no counts and no finish reason: a clean end is done.
fn complete(content: &str, content_events: usize) -> Summary {
    Summary {
        content: content.into(),
        content_events,
        done: true,
        ..Summary::default()
    }
}

fn tokens(r: &Replay) -> Vec<&str> {
    r.events
        .iter()
        .filter_map(|e| match e {
            Event::Token(d) => Some(d.text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn doc_trtllm_deltas_with_repeated_tokens() {
    let r = stream(fixture!("doc-trtllm-delta-stream.sse"));
    assert_eq!(
        r.summary,
        complete(" Machine learning is learning learning", 5)
    );
    assert_eq!(*r.events.last().unwrap(), Event::Done);
}

#[test]
fn doc_vllm_cumulative_text_becomes_deltas() {
    // The repeated first text adds nothing; the third message shows the
    // stream is cumulative.
    let r = stream(fixture!("doc-vllm-cumulative-stream.sse"));
    assert_eq!(r.summary, complete(" Triton Inference Server \u{a9}", 4));
    assert_eq!(tokens(&r), [" Triton", " Inference", " Server", " \u{a9}"]);
}

#[test]
fn doc_error_after_200_is_an_error_and_not_done() {
    let r = stream(fixture!("doc-error-after-200.sse"));
    assert_eq!(
        r.summary,
        Summary {
            content: " Hello".into(),
            content_events: 1,
            errors: vec![
                "in ensemble 'ensemble', Executor failed process requestId 1 due to the \
                 following error: Encountered an error in forwardAsync function: \
                 [TensorRT-LLM][ERROR] CUDA runtime error"
                    .into()
            ],
            ..Summary::default()
        }
    );
}

#[test]
fn doc_nostream_bodies() {
    let r = whole(fixture!("doc-nostream.json"));
    assert_eq!(
        r.summary,
        complete(" Machine learning is a branch of AI.", 1)
    );
    let r = whole(fixture!("doc-nostream-array.json"));
    assert_eq!(
        r.summary,
        complete("  Machine learning is a branch of AI.", 1)
    );
}

#[test]
fn an_empty_body_is_not_complete() {
    let r = stream(b"");
    assert_eq!(r.summary, Summary::default());
    let r = stream(b": keep-alive\n\n");
    assert!(!r.summary.done);
}

// Captured from the built-in simulator (see tests/fixtures/triton/README.md).

const SIM_TEXT: &str = " steady latency while batching keeps every request moving";

#[test]
fn sim_stream() {
    let r = stream(fixture!("sim-stream.sse"));
    assert_eq!(r.summary, complete(SIM_TEXT, 8));
}

#[test]
fn sim_nostream() {
    let r = whole(fixture!("sim-nostream.json"));
    assert_eq!(r.summary, complete(SIM_TEXT, 1));
}

#[test]
fn sim_error_after_200() {
    let r = stream(fixture!("sim-error-after-200.sse"));
    assert_eq!(
        r.summary,
        Summary {
            content: " steady latency".into(),
            content_events: 2,
            errors: vec!["simulated error after 200".into()],
            ..Summary::default()
        }
    );
}

#[test]
fn sim_malformed_chunk_fails_the_feed() {
    let e = replay::<Triton>(Framing::Sse, fixture!("sim-malformed.sse")).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("feed of message #2 ("), "{text}");
    assert!(
        text.contains("failed: not a Triton generate response: EOF"),
        "{text}"
    );
}
