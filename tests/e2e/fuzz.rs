//! The CI slice of the fuzzing (`cargo bench --bench fuzz` runs it for as long as asked):
//! a fixed number of seeded inputs per target, each fed whole and split; a panic or a broken
//! property fails with the input proptest shrank it to.
use llm_loadtest::fuzz::Target;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use crate::fuzz_input::{inputs, targets};
use crate::plugin_support::{ROOMY_DEADLINE, runtime_with};

/// Inputs per target: the framings are cheap, the readers behind a file or a plugin call
/// less so (about 5 s in all, debug build). `LLM_LOADTEST_FUZZ_SCALE=N` multiplies them.
fn cases(target: &Target) -> u32 {
    let scale: u32 = std::env::var("LLM_LOADTEST_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    scale
        * match target {
            Target::Framing(_) => 10_000,
            Target::Adapter(..) => 1_000,
            _ => 500,
        }
}

#[test]
fn every_reader_survives_mutated_and_split_inputs() {
    let rt = runtime_with(1, 64 * 1024 * 1024, ROOMY_DEADLINE);
    let scratch = tempfile::tempdir().unwrap();
    let mut tried = Vec::new();
    for target in targets(&rt) {
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: cases(&target),
                failure_persistence: None,
                ..Config::default()
            },
            // Seeded: CI tries the same inputs every run.
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let ran = std::cell::Cell::new(0u32);
        let result = runner.run(&inputs(&target), |input| {
            ran.set(ran.get() + 1);
            target
                .exercise(&input, scratch.path())
                .map_err(TestCaseError::fail)
        });
        if let Err(e) = result {
            panic!("{}: {e}", target.name());
        }
        assert!(
            ran.get() >= cases(&target),
            "{}: {} inputs",
            target.name(),
            ran.get()
        );
        tried.push(format!("{} {}", target.name(), ran.get()));
    }
    assert!(tried.len() >= 12, "{tried:?}");
    eprintln!("fuzzed: {tried:?}");
}
