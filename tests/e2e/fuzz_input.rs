//! Inputs for the fuzz targets (`llm_loadtest::fuzz`): a fixture mutated the way broken
//! servers and hand-edited files break bytes, or random bytes, and where the transport splits
//! them. Shared by the CI slice (`fuzz.rs`) and the time-boxed bench (`benches/fuzz.rs`).
use std::path::{Path, PathBuf};

use llm_loadtest::fuzz::{Input, Target};
use proptest::prelude::*;

/// Bytes that matter to the formats read: framing, JSON, TOML, UTF-8 edges.
const DICTIONARY: &[&[u8]] = &[
    b"\n",
    b"\n\n",
    b"\r\n",
    b"data: ",
    b"data:",
    b"[DONE]",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b":",
    b",",
    b"null",
    b"-1",
    b"1e308",
    b"\xff",
    b"\xe2\x82",
    b"\xf0\x9f\x98\x80",
    b"=",
    b"[[",
    b"\"\"\"",
    b"#",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Repeat(usize, usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), proptest::sample::select(DICTIONARY))
            .prop_map(|(i, w)| Mutation::Insert(i, w.to_vec())),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, w)| Mutation::Insert(i, w)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..32, 1u8..8).prop_map(|(i, n, k)| Mutation::Repeat(i, n, k)),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let at = |i: usize, b: &Vec<u8>| i % (b.len() + 1);
        match m {
            Mutation::Flip(i, x) if !b.is_empty() => {
                let i = i % b.len();
                b[i] ^= x;
            }
            Mutation::Flip(..) => {}
            Mutation::Insert(i, w) => {
                let i = at(*i, &b);
                b.splice(i..i, w.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Mutation::Truncate(i) => {
                let i = at(*i, &b);
                b.truncate(i);
            }
            Mutation::Repeat(i, n, k) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                let piece = b[i..end].to_vec();
                for _ in 0..*k {
                    b.splice(end..end, piece.iter().copied());
                }
            }
        }
    }
    b
}

fn fixture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            fixture_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The fixtures that seed `target`: every file under `tests/fixtures` and the dataset test
/// data with one of its suffixes, at most 64 KiB of each, sorted (a run is reproducible).
pub fn seeds(target: &Target) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    fixture_files(&root.join("tests/fixtures"), &mut files);
    fixture_files(&root.join("host/src/dataset/testdata"), &mut files);
    files.sort();
    let mut out: Vec<Vec<u8>> = files
        .iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            target.seed_suffixes().iter().any(|s| name.ends_with(s))
        })
        .filter_map(|p| std::fs::read(p).ok())
        .map(|mut b| {
            b.truncate(64 * 1024);
            b
        })
        .collect();
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

/// Inputs for `target`: mostly a seed mutated up to 6 times, sometimes random bytes, each
/// split by the transport at up to 8 points.
pub fn inputs(target: &Target) -> BoxedStrategy<Input> {
    let seeded = (
        proptest::sample::select(seeds(target)),
        proptest::collection::vec(mutation(), 0..6),
    )
        .prop_map(|(seed, muts)| apply(seed, &muts));
    let random = proptest::collection::vec(any::<u8>(), 0..1024);
    (
        prop_oneof![4 => seeded, 1 => random],
        proptest::collection::vec(any::<usize>(), 0..8),
    )
        .prop_map(|(bytes, splits)| Input { bytes, splits })
        .boxed()
}

/// Every target: the three framings, each embedded adapter in its own framing, the TOML
/// scenario, both dataset readers and both result readers.
pub fn targets(rt: &llm_loadtest::plugin::Runtime) -> Vec<Target> {
    use llm_loadtest::plugin::{Framing, PluginKind, embedded_plugins};
    let mut out = vec![
        Target::Framing(Framing::Sse),
        Target::Framing(Framing::Ndjson),
        Target::Framing(Framing::WholeBody),
    ];
    for p in embedded_plugins()
        .iter()
        .filter(|p| p.kind == PluginKind::Adapter)
    {
        if let Ok(a) = rt.load_adapter(p.name) {
            let framing = a.info().framing;
            out.push(Target::Adapter(a, framing));
        }
    }
    out.extend([
        Target::Toml,
        Target::Jsonl,
        Target::ShareGpt,
        Target::VllmImport,
        Target::NativeResult,
    ]);
    out
}
