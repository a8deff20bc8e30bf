//! Time-boxed fuzzing of every reader of outside bytes (`llm_loadtest::fuzz`):
//! `cargo bench --bench fuzz -- --seconds 600` (default 60). Round-robin over the targets with
//! the CI slice's input strategies, unseeded; prints the inputs tried and the findings per
//! target, and writes each finding (a panic or a broken property) under
//! `target/fuzz-findings/`. Exits 1 when anything was found.
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

#[path = "../../tests/e2e/fuzz_input.rs"]
mod fuzz_input;

#[path = "shared/args.rs"]
mod bench_args;

fn main() {
    let budget = Duration::from_secs(bench_args::number("--seconds", 60));
    let rt = llm_loadtest::plugin::Runtime::new(llm_loadtest::plugin::RuntimeConfig {
        cache_dir: llm_loadtest::plugin::default_cache_dir(),
        ..llm_loadtest::plugin::RuntimeConfig::default()
    })
    .expect("the plugin runtime starts");
    let targets = fuzz_input::targets(&rt);
    let strategies: Vec<_> = targets.iter().map(fuzz_input::inputs).collect();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let findings_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-findings");
    // Panics are findings, counted and saved; their default report would drown the summary.
    std::panic::set_hook(Box::new(|_| {}));
    let mut runner = TestRunner::default();
    let mut tried = vec![0u64; targets.len()];
    let mut found = vec![0u64; targets.len()];
    let started = Instant::now();
    'outer: loop {
        for (i, target) in targets.iter().enumerate() {
            if started.elapsed() >= budget {
                break 'outer;
            }
            let Ok(tree) = strategies[i].new_tree(&mut runner) else {
                continue;
            };
            let input = tree.current();
            tried[i] += 1;
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                target.exercise(&input, scratch.path())
            }));
            let finding = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(broken)) => broken,
                Err(_) => "panicked".to_owned(),
            };
            found[i] += 1;
            let _ = std::fs::create_dir_all(&findings_dir);
            let file = findings_dir.join(format!("{}-{}.bin", target.name(), found[i]));
            let _ = std::fs::write(&file, &input.bytes);
            eprintln!(
                "finding in {}: {finding} (input {}, splits {:?})",
                target.name(),
                file.display(),
                input.splits
            );
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "fuzzed {} targets for {:.0} s",
        targets.len(),
        started.elapsed().as_secs_f64()
    );
    for (i, t) in targets.iter().enumerate() {
        println!(
            "  {:<28} {:>9} inputs  {} findings",
            t.name(),
            tried[i],
            found[i]
        );
    }
    let total: u64 = found.iter().sum();
    println!(
        "total: {} inputs, {total} findings",
        tried.iter().sum::<u64>()
    );
    if total > 0 {
        std::process::exit(1);
    }
}
