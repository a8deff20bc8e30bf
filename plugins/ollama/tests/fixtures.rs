//! Every Ollama fixture in tests/fixtures/ollama replayed through the
//! adapter exactly as the host frames it: whole, split at every byte, and
//! byte by byte. Expected values were read from the fixtures themselves.

use llm_loadtest_plugin_ollama::Ollama;
use llm_loadtest_sdk::testing::{Replay, Summary, replay, replay_split_everywhere};
use llm_loadtest_sdk::{Event, Framing, Usage};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/ollama/",
            $name
        ))
    };
}

fn stream(body: &[u8]) -> Replay {
    replay_split_everywhere::<Ollama>(Framing::Ndjson, body).unwrap()
}

fn whole(body: &[u8]) -> Replay {
    replay::<Ollama>(Framing::WholeBody, body).unwrap()
}

fn usage(prompt: Option<u32>, completion: u32) -> Option<Usage> {
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: Some(completion),
        cached_tokens: None,
    })
}

/// A complete answer: usage and finish from the `done: true` line, then done.
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
fn doc_generate_stream() {
    let r = stream(fixture!("doc-generate-stream.ndjson"));
    assert_eq!(
        r.summary,
        complete("The sky is blue.", 4, usage(Some(26), 5), "stop")
    );
    // The closing line's empty `response` is not a token.
    let n = r.events.len();
    assert_eq!(r.events[n - 1], Event::Done);
    assert_eq!(r.events[n - 2], Event::Finish("stop".into()));
}

#[test]
fn doc_chat_stream_without_prompt_count() {
    // Ollama leaves out prompt_eval_count when the prompt came from its cache.
    let r = stream(fixture!("doc-chat-stream-cached-prompt.ndjson"));
    assert_eq!(
        r.summary,
        complete("Hello there! \u{2728}", 3, usage(None, 3), "length")
    );
}

#[test]
fn doc_chat_thinking_is_reasoning() {
    let r = stream(fixture!("doc-chat-thinking.ndjson"));
    assert_eq!(
        r.summary,
        Summary {
            reasoning: "Let me think.".into(),
            reasoning_events: 2,
            ..complete("Yes.", 2, usage(Some(11), 4), "stop")
        }
    );
    assert_eq!(r.events[0], Event::reasoning("Let me"));
}

#[test]
fn doc_error_line() {
    let r = stream(fixture!("doc-error-line.ndjson"));
    assert_eq!(
        r.summary,
        Summary {
            content: "Once".into(),
            content_events: 1,
            errors: vec!["an error was encountered while running the model: unexpected EOF".into()],
            ..Summary::default()
        }
    );
}

#[test]
fn doc_nostream_bodies() {
    let r = whole(fixture!("doc-generate-nostream.json"));
    assert_eq!(
        r.summary,
        complete(
            "The sky is blue because of Rayleigh scattering.",
            1,
            usage(Some(26), 10),
            "stop"
        )
    );
    let r = whole(fixture!("doc-chat-nostream.json"));
    assert_eq!(
        r.summary,
        complete("Hello! How are you today?", 1, usage(Some(26), 8), "stop")
    );
}

// Captured from the built-in simulator (see tests/fixtures/ollama/README.md).

const SIM_TEXT: &str = " steady latency while batching keeps every request moving";

#[test]
fn sim_generate_stream() {
    let r = stream(fixture!("sim-generate-stream.ndjson"));
    assert_eq!(
        r.summary,
        complete(SIM_TEXT, 8, usage(Some(5), 8), "length")
    );
}

#[test]
fn sim_chat_stream() {
    let r = stream(fixture!("sim-chat-stream.ndjson"));
    assert_eq!(
        r.summary,
        complete(
            " then next begins from prompt prefill which costs",
            8,
            usage(Some(7), 8),
            "length"
        )
    );
}

#[test]
fn sim_generate_stream_stopped_by_the_model() {
    let r = stream(fixture!("sim-generate-stream-stop.ndjson"));
    assert_eq!(r.summary, complete(" reads", 1, usage(Some(4), 1), "stop"));
}

#[test]
fn sim_nostream_bodies() {
    let r = whole(fixture!("sim-generate-nostream.json"));
    assert_eq!(
        r.summary,
        complete(SIM_TEXT, 1, usage(Some(5), 8), "length")
    );
    let r = whole(fixture!("sim-chat-nostream.json"));
    assert_eq!(
        r.summary,
        complete(SIM_TEXT, 1, usage(Some(5), 8), "length")
    );
}

#[test]
fn sim_error_after_200() {
    let r = stream(fixture!("sim-error-after-200.ndjson"));
    assert_eq!(
        r.summary,
        Summary {
            content: " steady latency while batching keeps".into(),
            content_events: 5,
            errors: vec!["simulated error after 200".into()],
            ..Summary::default()
        }
    );
}

#[test]
fn sim_malformed_line_fails_the_feed() {
    let e = replay::<Ollama>(Framing::Ndjson, fixture!("sim-malformed.ndjson")).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("feed of message #5 ("), "{text}");
    assert!(
        text.contains("failed: not an Ollama response line: EOF"),
        "{text}"
    );
}
