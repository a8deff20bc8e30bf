//! Builds the first-party plugins (every crate under `plugins/`) and the test
//! guests (every crate under `tests/guests/`) for `wasm32-wasip2`, embeds the
//! plugins in the binary, and tells the tests where the test guests are.
//!
//! Plugins are discovered, not listed, so a new adapter crate needs no change
//! here. Each plugin's kind (adapter, SLO or recommendation policy) is read from the
//! interface its component exports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use llm_loadtest_wasm_build as wasm_build;

const ADAPTER_EXPORT: &[u8] = b"llm-loadtest:plugin/adapter@";
const SLO_EXPORT: &[u8] = b"llm-loadtest:plugin/slo-policy@";
const RECOMMEND_EXPORT: &[u8] = b"llm-loadtest:plugin/recommend-policy@";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            wasm_build::report_failure(&err);
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), wasm_build::BuildError> {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("the host crate lives one level below the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));
    wasm_build::emit_rerun_if_changed(&workspace);

    let plugins = wasm_build::discover_crates(&workspace.join("plugins"))?;
    let guests = wasm_build::discover_crates(&workspace.join("tests").join("guests"))?;
    let packages: Vec<&str> = plugins
        .iter()
        .chain(guests.iter())
        .map(|c| c.package.as_str())
        .collect();
    let artifacts = wasm_build::build_components(&workspace, &packages)?;
    let wasm_of = |package: &str| -> PathBuf {
        artifacts
            .iter()
            .find(|a| a.package == package)
            .map(|a| a.wasm.clone())
            .expect("build_components returns one artifact per package")
    };

    // Copies in OUT_DIR decouple the binary from later rebuilds of
    // target/wasm (tests rebuild it with other crates).
    let embed_dir = out_dir.join("plugins");
    let guest_dir = out_dir.join("test-guests");
    for dir in [&embed_dir, &guest_dir] {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }

    let mut embedded = String::from("&[\n");
    for plugin in &plugins {
        let built = wasm_of(&plugin.package);
        let bytes = std::fs::read(&built).map_err(|e| io_error(&built, e))?;
        let kind = if contains(&bytes, ADAPTER_EXPORT) {
            "Adapter"
        } else if contains(&bytes, SLO_EXPORT) {
            "Slo"
        } else if contains(&bytes, RECOMMEND_EXPORT) {
            "Recommend"
        } else {
            // A kind this host does not know yet (e.g. a future policy):
            // it is built, but not embedded until the host can load it.
            println!(
                "cargo:warning=plugins/{} exports none of the adapter, slo-policy and \
                 recommend-policy interfaces; not embedded",
                plugin.dir_name
            );
            continue;
        };
        let copy = embed_dir.join(format!("{}.wasm", plugin.dir_name));
        std::fs::write(&copy, &bytes).map_err(|e| io_error(&copy, e))?;
        let _ = writeln!(
            embedded,
            "    EmbeddedPlugin {{ name: {:?}, kind: PluginKind::{kind}, bytes: include_bytes!({:?}) }},",
            plugin.dir_name,
            copy.display().to_string(),
        );
    }
    embedded.push_str("]\n");
    let embedded_rs = out_dir.join("embedded.rs");
    std::fs::write(&embedded_rs, embedded).map_err(|e| io_error(&embedded_rs, e))?;

    for guest in &guests {
        let built = wasm_of(&guest.package);
        let copy = guest_dir.join(format!("{}.wasm", guest.dir_name));
        std::fs::copy(&built, &copy).map_err(|e| io_error(&copy, e))?;
    }
    println!(
        "cargo:rustc-env=LLM_LOADTEST_TEST_GUESTS_DIR={}",
        guest_dir.display()
    );
    Ok(())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn io_error(path: &Path, e: std::io::Error) -> wasm_build::BuildError {
    wasm_build::BuildError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}
