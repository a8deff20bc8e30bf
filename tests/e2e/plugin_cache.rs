//! Loading: the on-disk cache of compiled plugins, once-per-spec loading,
//! and the errors for things that are not plugins.

use std::sync::Arc;

use llm_loadtest::plugin::{CacheStats, PluginError, Runtime, RuntimeConfig};

use crate::plugin_support::{ROOMY_DEADLINE, misbehave_wasm};

fn runtime(cache: Option<&std::path::Path>) -> Arc<Runtime> {
    Runtime::new(RuntimeConfig {
        cache_dir: cache.map(|p| p.to_path_buf()),
        // Every call here is expected to succeed: no deadline is under test.
        call_deadline: ROOMY_DEADLINE,
        memory_limit: 64 * 1024 * 1024,
        pool_size: 1,
    })
    .unwrap()
}

#[test]
fn a_second_runtime_loads_the_compiled_plugin_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let first = runtime(Some(dir.path()));
    let a = first.load_adapter(&misbehave_wasm()).unwrap();
    assert_eq!(
        first.cache_stats(),
        CacheStats {
            hits: 0,
            compiles: 1,
            writes: 1,
            rejected: 0
        }
    );
    let file = first.cache_path(&a.identity().sha256).unwrap();
    assert!(file.is_file(), "{} missing", file.display());

    let second = runtime(Some(dir.path()));
    let b = second.load_adapter(&misbehave_wasm()).unwrap();
    assert_eq!(second.cache_stats().hits, 1);
    assert_eq!(second.cache_stats().compiles, 0);
    assert_eq!(a.identity(), b.identity());
    // The cached artifact runs like the freshly compiled one.
    let mut p = b.new_parser().unwrap();
    assert_eq!(p.feed(b"ok").unwrap().len(), 1);
}

#[test]
fn a_corrupt_cache_file_is_rejected_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let first = runtime(Some(dir.path()));
    let a = first.load_adapter(&misbehave_wasm()).unwrap();
    let file = first.cache_path(&a.identity().sha256).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let second = runtime(Some(dir.path()));
    second.load_adapter(&misbehave_wasm()).unwrap();
    let stats = second.cache_stats();
    assert_eq!((stats.rejected, stats.compiles, stats.writes), (1, 1, 1));

    let third = runtime(Some(dir.path()));
    third.load_adapter(&misbehave_wasm()).unwrap();
    assert_eq!(third.cache_stats().hits, 1);
}

#[test]
fn a_spec_is_loaded_once_per_runtime() {
    let rt = runtime(None);
    let a = rt.load_adapter(&misbehave_wasm()).unwrap();
    let b = rt.load_adapter(&misbehave_wasm()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(rt.cache_stats().compiles, 1);
    // The identity names the plugin and where it came from.
    assert_eq!(a.identity().name, "misbehave");
    // Built with the SDK, which targets contract 0.2 for adapters.
    assert_eq!(a.identity().wit_version, "0.2.0");
    assert_eq!(a.identity().source, misbehave_wasm());
    assert_eq!(a.identity().sha256.len(), 64);
}

#[test]
fn things_that_are_not_plugins_get_one_line_errors() {
    let rt = runtime(None);
    let dir = tempfile::tempdir().unwrap();

    let mut errors = Vec::new();
    let err = rt.load_adapter("no-such-adapter").unwrap_err();
    assert!(matches!(err, PluginError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("openai"), "{err}");
    errors.push(err);

    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "just some text\n").unwrap();
    let err = rt.load_adapter(text.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, PluginError::NotAComponent { .. }), "{err}");
    errors.push(err);

    // The smallest core module: the header alone.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = rt.load_adapter(core.to_str().unwrap()).unwrap_err();
    assert!(err.to_string().contains("core WebAssembly module"), "{err}");
    errors.push(err);

    let err = rt.load_slo_policy(&misbehave_wasm()).unwrap_err();
    assert!(matches!(err, PluginError::WrongKind { .. }), "{err}");
    errors.push(err);
    let err = rt.load_adapter("slo").unwrap_err();
    assert!(matches!(err, PluginError::WrongKind { .. }), "{err}");
    errors.push(err);

    for e in &errors {
        assert!(!e.to_string().contains('\n'), "{e}");
        assert_eq!(e.class(), "plugin");
    }
}
