//! Every TGI fixture in tests/fixtures/tgi replayed through the adapter
//! exactly as the host frames it: whole, split at every byte, and byte by
//! byte. Expected values were read from the fixtures themselves.

use llm_loadtest_plugin_tgi::Tgi;
use llm_loadtest_sdk::testing::{Replay, Summary, replay, replay_split_everywhere};
use llm_loadtest_sdk::{Event, Framing, TokenDelta, Usage};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/tgi/",
            $name
        ))
    };
}

fn stream(body: &[u8]) -> Replay {
    replay_split_everywhere::<Tgi>(Framing::Sse, body).unwrap()
}

fn whole(body: &[u8]) -> Replay {
    replay::<Tgi>(Framing::WholeBody, body).unwrap()
}

fn usage(prompt: Option<u32>, completion: u32) -> Option<Usage> {
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: Some(completion),
        cached_tokens: None,
    })
}

fn complete(content: &str, content_events: usize, usage: Option<Usage>, finish: &str) -> Summary {
    Summary {
        content: content.into(),
        content_events,
        usage,
        usage_events: 1,
        finish_reason: Some(finish.into()),
        done: true,
        ..Summary::default()
    }
}

#[test]
fn doc_stream_skips_special_and_empty_tokens() {
    // Five tokens: one held back as "" (half a character) and the special
    // end-of-sequence token are not output; generated_tokens counts all.
    let r = stream(fixture!("doc-stream.sse"));
    assert_eq!(
        r.summary,
        complete(" The caf\u{e9} opens", 3, usage(Some(7), 5), "eos_token")
    );
    assert_eq!(
        r.events[0],
        Event::Token(TokenDelta {
            text: " The".into(),
            tokens: Some(1)
        })
    );
    assert_eq!(*r.events.last().unwrap(), Event::Done);
}

#[test]
fn doc_stream_without_details_ends_on_generated_text() {
    let r = stream(fixture!("doc-stream-no-details.sse"));
    assert_eq!(
        r.summary,
        Summary {
            content: " The end".into(),
            content_events: 2,
            done: true,
            ..Summary::default()
        }
    );
}

#[test]
fn doc_error_after_200() {
    let r = stream(fixture!("doc-error-after-200.sse"));
    assert_eq!(
        r.summary,
        Summary {
            content: " The".into(),
            content_events: 1,
            errors: vec![
                "Request failed during generation: Server error: CUDA out of memory. Tried to \
                 allocate 2.00 GiB (error_type generation)"
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
        complete(" The caf\u{e9} opens", 1, usage(None, 3), "length")
    );
    let r = whole(fixture!("doc-nostream-list.json"));
    assert_eq!(
        r.summary,
        Summary {
            content: " The caf\u{e9} opens".into(),
            content_events: 1,
            done: true,
            ..Summary::default()
        }
    );
}

// Captured from the built-in simulator (see tests/fixtures/tgi/README.md).

const SIM_TEXT: &str = " steady latency while batching keeps every request moving";

#[test]
fn sim_stream() {
    let r = stream(fixture!("sim-stream.sse"));
    assert_eq!(
        r.summary,
        complete(SIM_TEXT, 8, usage(Some(5), 8), "length")
    );
    // One token per event, as TGI streams.
    assert!(r.events.iter().all(|e| match e {
        Event::Token(d) => d.tokens == Some(1),
        _ => true,
    }));
}

#[test]
fn sim_stream_stopped_by_the_model() {
    let r = stream(fixture!("sim-stream-stop.sse"));
    assert_eq!(
        r.summary,
        complete(" reads", 1, usage(Some(4), 1), "eos_token")
    );
}

#[test]
fn sim_nostream() {
    let r = whole(fixture!("sim-nostream.json"));
    assert_eq!(r.summary, complete(SIM_TEXT, 1, usage(None, 8), "length"));
}

#[test]
fn sim_error_after_200() {
    let r = stream(fixture!("sim-error-after-200.sse"));
    assert_eq!(
        r.summary,
        Summary {
            content: " steady latency while batching keeps every request".into(),
            content_events: 7,
            errors: vec!["simulated error after 200 (error_type generation)".into()],
            ..Summary::default()
        }
    );
}

#[test]
fn sim_malformed_chunk_fails_the_feed() {
    let e = replay::<Tgi>(Framing::Sse, fixture!("sim-malformed.sse")).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("feed of message #7 ("), "{text}");
    assert!(text.contains("failed: not a TGI response: EOF"), "{text}");
}
