//! An adapter component that misbehaves on request, used only by the host's
//! tests of its sandbox (epoch deadlines, memory caps, trap recovery, output
//! limits).
//!
//! The behaviour is chosen by a keyword:
//! - in `build-request`, by the request's `model` string;
//! - in `feed`, by the message: the whole message as text, or the `content`
//!   of the message when it is a JSON object `{"content": "<keyword>"}`.
//!
//! | keyword | behaviour |
//! |---|---|
//! | `loop`  | spins forever (the host's epoch deadline must trap it) |
//! | `alloc` | allocates without bound (the host's memory cap must stop it) |
//! | `panic` | panics, which traps the instance (`panic = "abort"`) |
//! | `huge`  | returns an oversized result: a 64 MiB request body from `build-request`, 1,000,000 token events (`"x"`) from `feed` |
//! | `huge:N` | the same with N bytes / N events, so a test can pick a size just over its limit and well under its memory cap |
//! | `ok`    | behaves like a trivial adapter |
//!
//! Any other model in `build-request` behaves like `ok`; any other message in
//! `feed` is an `Err` naming it, so a test can also check parser errors.
//!
//! `ok` in `build-request` sends `POST /v1/completions` with the body
//! `{"model": "ok"}` and SSE framing; `ok` in `feed` yields one token event
//! with the text `ok`. `finish` always returns `[done]`. Adapter info: name
//! `misbehave`, SSE framing.

use llm_loadtest_sdk::{
    Adapter, AdapterInfo, Event, Framing, GenerationRequest, HttpRequest, StreamParser,
};

/// The misbehaving adapter.
pub struct Misbehave;

/// Default sizes of the oversized outputs: far past any sane per-call output
/// limit, yet small enough (peak guest memory about 64 MiB for the body,
/// about 80 MiB for the events) to stay distinct from `alloc`.
const HUGE_BYTES: usize = 64 * 1024 * 1024;
const HUGE_EVENTS: usize = 1_000_000;

/// A keyword this guest reacts to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Loop,
    Alloc,
    Panic,
    /// An output of this many bytes or events.
    Huge(Option<usize>),
    Ok,
}

fn behaviour(word: &str) -> Option<Behaviour> {
    match word.trim() {
        "loop" => Some(Behaviour::Loop),
        "alloc" => Some(Behaviour::Alloc),
        "panic" => Some(Behaviour::Panic),
        "huge" => Some(Behaviour::Huge(None)),
        "ok" => Some(Behaviour::Ok),
        other => {
            let n = other.strip_prefix("huge:")?.parse().ok()?;
            Some(Behaviour::Huge(Some(n)))
        }
    }
}

/// Runs the bad behaviours; returns only for `Huge` and `Ok`.
fn misbehave(b: Behaviour, context: &str) {
    match b {
        Behaviour::Loop => spin_forever(),
        Behaviour::Alloc => allocate_forever(),
        Behaviour::Panic => panic!("misbehave: panic requested in {context}"),
        Behaviour::Huge(_) | Behaviour::Ok => {}
    }
}

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        // black_box keeps the optimiser from proving the loop empty.
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn allocate_forever() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really committed.
        hoard.push(vec![1u8; 1024 * 1024]);
        std::hint::black_box(&hoard);
    }
}

impl Adapter for Misbehave {
    type Parser = MisbehaveParser;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "misbehave".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Test guest: loops, allocates, panics or floods on request".into(),
            framing: Framing::Sse,
            default_path: "/v1/completions".into(),
            capabilities: vec!["completions".into()],
        }
    }

    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
        let b = behaviour(&req.model).unwrap_or(Behaviour::Ok);
        misbehave(b, "build-request");
        if let Behaviour::Huge(n) = b {
            let body = vec![b'x'; n.unwrap_or(HUGE_BYTES)];
            return Ok(HttpRequest::post_json(
                "/v1/completions",
                body,
                Framing::Sse,
            ));
        }
        Ok(HttpRequest::post_json(
            "/v1/completions",
            br#"{"model": "ok"}"#.to_vec(),
            Framing::Sse,
        ))
    }
}

/// The parser half: reacts to each message's keyword.
#[derive(Default)]
pub struct MisbehaveParser;

/// The keyword in a message: `{"content": "..."}` or the bare text.
fn message_keyword(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("{\"content\":")
        && let Some(inner) = rest.trim().strip_suffix('}')
    {
        return inner.trim().trim_matches('"').to_string();
    }
    text.to_string()
}

impl StreamParser for MisbehaveParser {
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
        let word = message_keyword(message);
        let Some(b) = behaviour(&word) else {
            return Err(format!("misbehave: unknown keyword {word:?}"));
        };
        misbehave(b, "feed");
        if let Behaviour::Huge(n) = b {
            let n = n.unwrap_or(HUGE_EVENTS);
            return Ok((0..n).map(|_| Event::token("x")).collect());
        }
        Ok(vec![Event::token("ok")])
    }

    fn finish(&mut self) -> Result<Vec<Event>, String> {
        Ok(vec![Event::Done])
    }
}

llm_loadtest_sdk::register_adapter!(Misbehave);
