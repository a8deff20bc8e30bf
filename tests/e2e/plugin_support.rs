//! Shared setup for the plugin tests: the misbehaving test guest, runtimes
//! with deadlines no ordinary call comes near, and a watchdog so a deadline
//! that never fires fails the test instead of hanging it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use llm_loadtest::plugin::{Adapter, GenerationRequest, Prompt, Runtime, RuntimeConfig};

/// The deadline the sandbox tests run plugins under. It must fire on the
/// guest's endless loop (any value does; the loop tests wait for it once),
/// and it must never fire on the ordinary calls the same tests make on the
/// same runtime, before and after: those need microseconds, so 2 s is some
/// 10^5 times their need and no scheduling delay of a loaded 2-core machine
/// running a debug build reaches it.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// The test guest host/build.rs built from tests/guests/`name`.
pub fn test_guest(name: &str) -> String {
    let path = PathBuf::from(env!("LLM_LOADTEST_TEST_GUESTS_DIR")).join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path.to_string_lossy().into_owned()
}

/// The misbehaving adapter built from tests/guests/misbehave.
pub fn misbehave_wasm() -> String {
    test_guest("misbehave")
}

/// A cache shared by these tests so the guest compiles once per machine,
/// not once per test; each test still gets its own runtime and pool.
fn shared_cache() -> PathBuf {
    std::env::temp_dir().join("llm-loadtest-e2e-plugin-tests-cache")
}

/// The deadline for tests of the memory and output caps: long enough that
/// building a large output on a busy 2-core machine never runs into it.
pub const ROOMY_DEADLINE: Duration = Duration::from_secs(10);

pub fn runtime_with(pool_size: usize, memory_limit: usize, deadline: Duration) -> Arc<Runtime> {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(shared_cache()),
        call_deadline: deadline,
        memory_limit,
        pool_size,
    })
    .expect("runtime starts")
}

/// A fresh misbehave adapter on its own runtime (pool of `pool_size`, 64 MiB,
/// [`DEADLINE`]).
pub fn misbehave(pool_size: usize) -> Arc<Adapter> {
    misbehave_with(pool_size, 64 * 1024 * 1024, DEADLINE)
}

pub fn misbehave_with(pool_size: usize, memory_limit: usize, deadline: Duration) -> Arc<Adapter> {
    runtime_with(pool_size, memory_limit, deadline)
        .load_adapter(&misbehave_wasm())
        .expect("misbehave loads")
}

pub fn request(model: &str) -> GenerationRequest {
    GenerationRequest {
        model: model.into(),
        prompt: Prompt::Text("hello".into()),
        max_tokens: 8,
        min_tokens: None,
        ignore_eos: false,
        temperature: None,
        stream: true,
        extra_body: None,
    }
}

/// Run `f` on its own thread and wait at most a minute for it: far past any
/// deadline under test (30 times [`DEADLINE`], 6 times [`ROOMY_DEADLINE`]),
/// so only a deadline that never fires trips it.
pub fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the plugin call did not return: its deadline never fired")
}
