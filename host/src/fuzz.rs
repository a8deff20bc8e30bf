//! What every reader of outside bytes must survive, as fuzz targets: the SSE / NDJSON /
//! whole-body framing, every first-party adapter's `feed`, the TOML scenario, the JSONL and
//! ShareGPT dataset readers, vLLM-JSON import and our own result JSON. A target returns
//! `Err` when a property fails (the framing must give the same messages however the
//! transport split the bytes); a panic is a finding in itself. The harness that makes the
//! inputs (proptest, seeded from the fixtures) is in the tests (`tests/e2e/fuzz.rs`, a
//! short count-bounded slice that CI runs) and in `benches/fuzz.rs` (time-boxed, prints
//! figures). Kept in the library so both drive the same code.
use std::path::Path;
use std::sync::Arc;

use llm_loadtest_sdk::framing::{Decoder, Frame};

use crate::plugin::{Adapter, Framing};

/// One input: bytes, and where the transport splits them (offsets, taken modulo the length).
#[derive(Debug, Clone)]
pub struct Input {
    pub bytes: Vec<u8>,
    pub splits: Vec<usize>,
}

impl Input {
    /// The bytes in the chunks the splits make.
    pub fn chunks(&self) -> Vec<&[u8]> {
        let n = self.bytes.len();
        let mut cuts: Vec<usize> = self.splits.iter().map(|s| s % (n + 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Vec::new();
        let mut from = 0;
        for c in cuts.into_iter().chain(std::iter::once(n)) {
            out.push(&self.bytes[from..c]);
            from = c;
        }
        out
    }
}

/// A reader under test.
#[derive(Clone)]
pub enum Target {
    Framing(Framing),
    /// An adapter's `feed` and `finish`, fed what the host's decoder makes of the bytes.
    Adapter(Arc<Adapter>, Framing),
    Toml,
    Jsonl,
    ShareGpt,
    VllmImport,
    NativeResult,
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Framing(f) => format!("framing-{}", f.name()),
            Target::Adapter(a, f) => format!("adapter-{}-{}", a.identity().name, f.name()),
            Target::Toml => "toml-scenario".into(),
            Target::Jsonl => "dataset-jsonl".into(),
            Target::ShareGpt => "dataset-sharegpt".into(),
            Target::VllmImport => "import-vllm".into(),
            Target::NativeResult => "result-json".into(),
        }
    }

    /// The fixture files whose bytes seed this target, by file-name suffix.
    pub fn seed_suffixes(&self) -> &'static [&'static str] {
        match self {
            Target::Framing(Framing::Sse) | Target::Adapter(_, Framing::Sse) => &[".sse"],
            Target::Framing(Framing::Ndjson) | Target::Adapter(_, Framing::Ndjson) => {
                &[".ndjson", ".jsonl"]
            }
            Target::Framing(Framing::WholeBody) | Target::Adapter(_, Framing::WholeBody) => {
                &[".json", ".body"]
            }
            Target::Toml => &[".toml"],
            Target::Jsonl => &[".jsonl"],
            Target::ShareGpt | Target::VllmImport | Target::NativeResult => &[".json"],
        }
    }

    /// Runs one input; `scratch` is a directory for the readers that take a file.
    pub fn exercise(&self, input: &Input, scratch: &Path) -> Result<(), String> {
        match self {
            Target::Framing(f) => framing(*f, input),
            Target::Adapter(a, f) => {
                adapter(a, *f, input);
                Ok(())
            }
            Target::Toml => {
                toml_scenario(&input.bytes, scratch);
                Ok(())
            }
            Target::Jsonl | Target::ShareGpt => {
                dataset(self, &input.bytes, scratch);
                Ok(())
            }
            Target::VllmImport => {
                let text = String::from_utf8_lossy(&input.bytes);
                let _ = crate::result::import_vllm::import(&text, "fuzz.json", &[]);
                Ok(())
            }
            Target::NativeResult => {
                let _ = crate::result::RunResult::from_json(&String::from_utf8_lossy(&input.bytes));
                Ok(())
            }
        }
    }
}

/// Every message the decoder makes of `chunks`, and whether it refused them.
fn decode(framing: Framing, chunks: &[&[u8]]) -> (Vec<Option<Vec<u8>>>, bool) {
    let mut d = Decoder::with_limit(framing, 64 * 1024);
    let mut out = Vec::new();
    let drain = |d: &mut Decoder, out: &mut Vec<Option<Vec<u8>>>| {
        while let Some(f) = d.next_frame() {
            out.push(match f {
                Frame::Message(m) => Some(m.to_vec()),
                Frame::Done => None,
            });
        }
    };
    for c in chunks {
        if d.push(c).is_err() {
            return (out, true);
        }
        drain(&mut d, &mut out);
    }
    let refused = d.finish().is_err();
    drain(&mut d, &mut out);
    (out, refused)
}

/// The decoder gives the same messages whatever the split.
fn framing(framing: Framing, input: &Input) -> Result<(), String> {
    let whole = decode(framing, &[&input.bytes]);
    let split = decode(framing, &input.chunks());
    // A refusal (a message over the limit) may come at another message when split; the
    // messages before it must agree.
    let agree = if whole.1 || split.1 {
        let n = whole.0.len().min(split.0.len());
        whole.0[..n] == split.0[..n]
    } else {
        whole == split
    };
    agree.then_some(()).ok_or_else(|| {
        format!(
            "{} framing: {} messages whole, {} split at {:?}",
            framing.name(),
            whole.0.len(),
            split.0.len(),
            input.splits
        )
    })
}

/// Feeds what the decoder makes of the chunks, as a run would; errors are the adapter's
/// right, a host panic is not.
fn adapter(adapter: &Adapter, framing: Framing, input: &Input) {
    let Ok(mut parser) = adapter.new_parser() else {
        return;
    };
    let (messages, _) = decode(framing, &input.chunks());
    for m in messages.into_iter().flatten() {
        if parser.feed(&m).is_err() {
            return;
        }
    }
    let _ = parser.finish();
}

fn toml_scenario(bytes: &[u8], scratch: &Path) {
    use clap::Parser as _;
    let path = scratch.join("scenario.toml");
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let Some(path) = path.to_str() else { return };
    let Ok(cli) = crate::cli::Cli::try_parse_from(["llm-loadtest", "run", "--config", path]) else {
        return;
    };
    if let crate::cli::Command::Run(args) = cli.command
        && let Ok(args) = args.merged()
    {
        let _ = args.to_spec();
    }
}

fn dataset(target: &Target, bytes: &[u8], scratch: &Path) {
    let path = scratch.join("dataset");
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let spec = match target {
        Target::Jsonl => crate::dataset::DatasetSpec::Jsonl {
            path,
            output_len: 16,
        },
        _ => crate::dataset::DatasetSpec::ShareGpt {
            path,
            output_len: None,
        },
    };
    let Ok(tk) = crate::tokenize::Tokenizer::new(crate::tokenize::TokenizerKind::Cl100kBase) else {
        return;
    };
    let _ = crate::dataset::load(&spec, &tk, crate::dataset::Endpoint::Completions, 4, 1);
}
