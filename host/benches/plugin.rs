//! Plugin costs: `feed` through wasmtime against the same parse done
//! natively, instance creation, and plugin load cold (compile) and warm
//! (from the on-disk cache).
//!
//! Run: `cargo bench -p llm-loadtest --bench plugin`. Targets (issue 14): feed within 2× native
//! per message, amortized over the batches one read brings (`feed-batch`, contract 0.2); a
//! cached plugin ready in ≤ 50 ms.
//!
//! `LLM_LOADTEST_BENCH_ADAPTER=path/to/adapter.wasm` runs the feed benchmark
//! through another build of an OpenAI-protocol adapter (default: the
//! embedded `openai`), e.g. to compare optimisation levels.

use std::borrow::Cow;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llm_loadtest::plugin::{Batch, Event, Runtime, RuntimeConfig, TokenDelta, Usage};
use serde::Deserialize;

const FRAMES: usize = 1_000;

/// A 1,000-message OpenAI chat stream as a server sends it: a role-only
/// first chunk, content chunks, a finish chunk and a usage chunk.
fn chat_stream() -> Vec<Vec<u8>> {
    let head = r#""id":"chatcmpl-5f0c","object":"chat.completion.chunk","created":1795915646,"model":"tiny-llama""#;
    let mut frames = Vec::with_capacity(FRAMES);
    frames.push(
        format!(r#"{{{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":null}}]}}"#)
            .into_bytes(),
    );
    for i in 0..FRAMES - 3 {
        frames.push(
            format!(r#"{{{head},"choices":[{{"index":0,"delta":{{"content":" tok{i}"}},"finish_reason":null}}]}}"#)
                .into_bytes(),
        );
    }
    frames.push(
        format!(r#"{{{head},"choices":[{{"index":0,"delta":{{}},"finish_reason":"length"}}]}}"#)
            .into_bytes(),
    );
    frames.push(
        format!(r#"{{{head},"choices":[],"usage":{{"prompt_tokens":15,"completion_tokens":997,"total_tokens":1012}}}}"#)
            .into_bytes(),
    );
    frames
}

// The native baseline: the same typed, borrowing serde parse an adapter
// does, producing the same events.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<UsageJson>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UsageJson {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

fn native_feed(message: &[u8]) -> Vec<Event> {
    let chunk: Chunk<'_> = serde_json::from_slice(message).expect("valid chunk");
    let mut events = Vec::new();
    if let Some(choice) = chunk.choices.first() {
        // A choice without text is the contract's empty token (a role-only or finish-only
        // chunk), as the adapter marks it.
        let text = choice
            .delta
            .as_ref()
            .and_then(|d| d.content.as_deref())
            .unwrap_or("");
        events.push(Event::Token(TokenDelta {
            text: text.to_owned(),
            tokens: None,
        }));
        if let Some(reason) = &choice.finish_reason {
            events.push(Event::Finish(reason.to_string()));
        }
    }
    if let Some(u) = chunk.usage {
        events.push(Event::Usage(Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_tokens: None,
        }));
    }
    events
}

fn config(cache_dir: Option<std::path::PathBuf>) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir,
        pool_size: 1,
        ..RuntimeConfig::default()
    }
}

fn feed(c: &mut Criterion) {
    let frames = chat_stream();
    let rt = Runtime::new(config(None)).unwrap();
    let spec = std::env::var("LLM_LOADTEST_BENCH_ADAPTER").unwrap_or_else(|_| "openai".into());
    let adapter = rt.load_adapter(&spec).unwrap();

    // Both sides must agree before their costs are compared.
    let mut parser = adapter.new_parser().unwrap();
    for f in &frames {
        assert_eq!(parser.feed(f).unwrap(), native_feed(f));
    }
    drop(parser);

    // The 0.1 build of the same adapter kept for the compatibility tests (one `feed` call per
    // message, built at opt-level "s"): the cost before 0.2's batches and opt-level 3.
    let old = rt
        .load_adapter(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/components/openai-adapter-wit0.1-cadd12c.wasm")
                .to_string_lossy(),
        )
        .unwrap();

    let mut g = c.benchmark_group("feed_1000_frames");
    g.throughput(Throughput::Elements(FRAMES as u64));
    // Per message, amortized over batches of n: a batch is the messages one read brought.
    for (name, adapter, n) in [
        ("wasm-0.1/batch1", &old, 1),
        ("wasm/batch1", &adapter, 1),
        ("wasm/batch4", &adapter, 4),
        ("wasm/batch16", &adapter, 16),
    ] {
        let batches: Vec<Batch> = frames
            .chunks(n)
            .map(|chunk| {
                let mut batch = Batch::default();
                chunk.iter().for_each(|f| batch.push(f));
                batch
            })
            .collect();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut parser = adapter.new_parser().unwrap();
                for batch in &batches {
                    black_box(parser.feed_batch(black_box(batch)).unwrap());
                }
                black_box(parser.finish().unwrap());
            })
        });
    }
    g.bench_function("native", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(native_feed(black_box(f)));
            }
        })
    });
    g.finish();
}

fn instance(c: &mut Criterion) {
    let rt = Runtime::new(config(None)).unwrap();
    let adapter = rt.load_adapter("openai").unwrap();
    c.bench_function("instance_from_instance_pre", |b| {
        b.iter(|| adapter.probe_instance().unwrap())
    });
}

fn load(c: &mut Criterion) {
    let mut g = c.benchmark_group("load_openai");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // Cold: a new runtime compiles the component with Cranelift.
    g.bench_function("cold_compile", |b| {
        b.iter(|| {
            let rt = Runtime::new(config(None)).unwrap();
            black_box(rt.load_adapter("openai").unwrap());
        })
    });
    // Warm: a new runtime (as a new process would make) finds it on disk.
    // Measured from nothing to an adapter whose info() has been fetched.
    let dir = tempfile::tempdir().unwrap();
    Runtime::new(config(Some(dir.path().to_path_buf())))
        .unwrap()
        .load_adapter("openai")
        .unwrap();
    g.bench_function("warm_from_disk_cache", |b| {
        b.iter(|| {
            let rt = Runtime::new(config(Some(dir.path().to_path_buf()))).unwrap();
            let a = rt.load_adapter("openai").unwrap();
            assert_eq!(rt.cache_stats().hits, 1);
            black_box(a);
        })
    });
    g.finish();
}

criterion_group!(benches, feed, instance, load);
criterion_main!(benches);
