//! Build-script helper: compiles this workspace's WebAssembly components.
//!
//! The host embeds its first-party plugins, so its build script has to build
//! them for `wasm32-wasip2` first. Doing that from a build script has traps
//! this crate exists to avoid:
//!
//! - the outer cargo holds a lock on its target directory for the whole
//!   build, so the child cargo uses its own (`<workspace>/target/wasm`);
//! - the outer cargo's flags (`RUSTFLAGS`, `CARGO_BUILD_TARGET`,
//!   `RUSTC_WORKSPACE_WRAPPER` under clippy, ...) are meant for the host
//!   build and would corrupt or slow down a wasm build, so they are removed
//!   from the child's environment;
//! - the child's output is noise on success, so it is kept and shown (as
//!   `cargo:warning` lines) only when the build fails.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target every plugin is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The cargo profile plugins are built with (defined in the workspace root).
pub const PLUGIN_PROFILE: &str = "plugin";

/// What went wrong while building components.
#[derive(Debug)]
pub enum BuildError {
    /// The `wasm32-wasip2` target is missing and could not be installed.
    TargetMissing {
        /// Why the automatic install did not work.
        detail: String,
    },
    /// A program could not be started.
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A guest crate's manifest could not be read.
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// The child `cargo build` failed; `stderr` is its diagnostic output.
    Cargo {
        /// The command line that failed.
        command: String,
        /// Its exit status, as text.
        status: String,
        /// What it wrote on stderr.
        stderr: String,
    },
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// cargo succeeded but did not report a `.wasm` file for a package.
    NoArtifact {
        /// The package.
        package: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::TargetMissing { detail } => write!(
                f,
                "the {WASM_TARGET} Rust target is not installed and could not be added \
                 automatically ({detail}); run `rustup target add {WASM_TARGET}` and build again"
            ),
            BuildError::Spawn { program, source } => {
                write!(f, "could not run `{program}`: {source}")
            }
            BuildError::Manifest { path, detail } => {
                write!(
                    f,
                    "cannot read guest crate manifest {}: {detail}",
                    path.display()
                )
            }
            BuildError::Cargo {
                command, status, ..
            } => write!(f, "`{command}` failed ({status})"),
            BuildError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            BuildError::NoArtifact { package } => write!(
                f,
                "cargo built package `{package}` but reported no .wasm file for it \
                 (is it a `cdylib`?)"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn { source, .. } | BuildError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A guest crate found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCrate {
    /// The directory name (`plugins/openai` → `openai`): the name the host
    /// knows the plugin by.
    pub dir_name: String,
    /// The cargo package name, for `-p`.
    pub package: String,
    /// The crate's directory.
    pub dir: PathBuf,
}

/// One built component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmArtifact {
    /// The cargo package name.
    pub package: String,
    /// The directory holding the package's `Cargo.toml`.
    pub manifest_dir: PathBuf,
    /// The `.wasm` component.
    pub wasm: PathBuf,
}

/// Every crate directly under `dir` (a folder holding a `Cargo.toml`),
/// sorted by directory name. A missing `dir` yields no crates.
pub fn discover_crates(dir: &Path) -> Result<Vec<GuestCrate>, BuildError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(BuildError::Manifest {
                path: dir.to_path_buf(),
                detail: e.to_string(),
            });
        }
    };
    let mut crates = Vec::new();
    for entry in entries.flatten() {
        let crate_dir = entry.path();
        let manifest = crate_dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let package = package_name(&manifest)?;
        crates.push(GuestCrate {
            dir_name,
            package,
            dir: crate_dir,
        });
    }
    crates.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
    Ok(crates)
}

fn package_name(manifest: &Path) -> Result<String, BuildError> {
    let bad = |detail: String| BuildError::Manifest {
        path: manifest.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(manifest).map_err(|e| bad(e.to_string()))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    doc.get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .ok_or_else(|| bad("no [package] name".to_owned()))
}

/// Print the `cargo:rerun-if-changed` lines for everything a component build
/// depends on: the WIT contract, the SDK, the plugins, the test guests, and
/// the workspace manifest and lock file.
pub fn emit_rerun_if_changed(workspace: &Path) {
    for rel in [
        "wit",
        "sdk",
        "plugins",
        "tests/guests",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(rel).display());
    }
}

/// The directory where [`build_components`] leaves `.wasm` files.
pub fn artifact_dir(workspace: &Path) -> PathBuf {
    wasm_target_dir(workspace)
        .join(WASM_TARGET)
        .join(PLUGIN_PROFILE)
}

fn wasm_target_dir(workspace: &Path) -> PathBuf {
    workspace.join("target").join("wasm")
}

/// Make sure the `wasm32-wasip2` standard library is installed, installing it
/// with rustup when it is not.
pub fn ensure_target() -> Result<(), BuildError> {
    if target_in_sysroot() {
        return Ok(());
    }
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output();
    match listed {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            if text.lines().any(|l| l.trim() == WASM_TARGET) {
                return Ok(());
            }
        }
        Ok(out) => {
            return Err(BuildError::TargetMissing {
                detail: format!(
                    "`rustup target list --installed` exited with {}",
                    out.status
                ),
            });
        }
        Err(e) => {
            return Err(BuildError::TargetMissing {
                detail: format!("rustup is not available: {e}"),
            });
        }
    }
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| BuildError::TargetMissing {
            detail: format!("could not run rustup: {e}"),
        })?;
    if added.status.success() {
        Ok(())
    } else {
        Err(BuildError::TargetMissing {
            detail: format!(
                "`rustup target add {WASM_TARGET}` failed: {}",
                String::from_utf8_lossy(&added.stderr).trim()
            ),
        })
    }
}

/// True when the active rustc already has the target's standard library,
/// which also covers toolchains not managed by rustup.
fn target_in_sysroot() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let Ok(out) = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .stderr(Stdio::null())
        .output()
    else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::read_dir(dir)
        .map(|mut entries| {
            entries.any(|e| {
                e.map(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

/// Environment variables of the outer build that must not reach the child
/// cargo: they target the host build (flags, target, target dir, a clippy
/// wrapper) or would make the child think it is part of the outer build.
fn is_outer_build_var(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_PROFILE_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PKG_",
    ];
    EXACT.contains(&name)
        || PREFIXES.iter().any(|p| name.starts_with(p))
        || (name.starts_with("CARGO_TARGET_") && name.ends_with("_RUSTFLAGS"))
}

/// Build `packages` of the workspace at `workspace` for `wasm32-wasip2` with
/// the `plugin` profile, and return the `.wasm` file of each, in the order
/// given.
pub fn build_components(
    workspace: &Path,
    packages: &[&str],
) -> Result<Vec<WasmArtifact>, BuildError> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    ensure_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .arg("build")
        .args(["--target", WASM_TARGET])
        .args(["--profile", PLUGIN_PROFILE])
        .arg("--target-dir")
        .arg(wasm_target_dir(workspace))
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    for p in packages {
        cmd.args(["-p", p]);
    }
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && is_outer_build_var(name)
        {
            cmd.env_remove(name);
        }
    }
    let rendered = format!(
        "cargo build --target {WASM_TARGET} --profile {PLUGIN_PROFILE} --target-dir {} {}",
        wasm_target_dir(workspace).display(),
        packages
            .iter()
            .map(|p| format!("-p {p}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| BuildError::Spawn {
        program: cargo.to_string_lossy().into_owned(),
        source,
    })?;

    // stderr is drained on its own thread so a chatty build cannot fill the
    // pipe and stall while we read stdout.
    let mut stderr_pipe = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr_pipe.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let mut found: Vec<WasmArtifact> = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(artifact) = wasm_artifact(&line) {
                found.retain(|a| a.package != artifact.package);
                found.push(artifact);
            }
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn {
        program: cargo.to_string_lossy().into_owned(),
        source,
    })?;
    let stderr = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(BuildError::Cargo {
            command: rendered,
            status: status.to_string(),
            stderr,
        });
    }
    packages
        .iter()
        .map(|p| {
            found
                .iter()
                .find(|a| a.package == *p)
                .cloned()
                .ok_or_else(|| BuildError::NoArtifact {
                    package: (*p).to_owned(),
                })
        })
        .collect()
}

/// A `.wasm` artifact from one line of cargo's JSON messages.
fn wasm_artifact(line: &str) -> Option<WasmArtifact> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let wasm = msg
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))?;
    let manifest = PathBuf::from(msg.get("manifest_path")?.as_str()?);
    let package = package_name(&manifest).ok()?;
    Some(WasmArtifact {
        package,
        manifest_dir: manifest.parent()?.to_path_buf(),
        wasm: PathBuf::from(wasm),
    })
}

/// Report a build failure the way a build script must: the child's
/// diagnostics as `cargo:warning` lines (cargo shows them even on failure),
/// then the one-line reason on stderr.
pub fn report_failure(err: &BuildError) {
    if let BuildError::Cargo { stderr, .. } = err {
        for line in stderr.lines() {
            println!("cargo:warning={line}");
        }
    }
    println!("cargo:warning={err}");
    eprintln!("error: {err}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_build_flags_are_not_inherited() {
        for name in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "CARGO_PROFILE_RELEASE_LTO",
            "RUSTC_WORKSPACE_WRAPPER",
        ] {
            assert!(is_outer_build_var(name), "{name} should be removed");
        }
        for name in [
            "PATH",
            "HOME",
            "CARGO_HOME",
            "RUSTUP_TOOLCHAIN",
            "CARGO_MAKEFLAGS",
        ] {
            assert!(!is_outer_build_var(name), "{name} should be kept");
        }
    }

    #[test]
    fn artifact_is_read_from_cargo_json() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(tmp.path().join("not-a-crate")).unwrap();
        let manifest = dir.join("Cargo.toml");
        std::fs::write(&manifest, "[package]\nname = \"demo-plugin\"\n").unwrap();
        let line = serde_json::json!({
            "reason": "compiler-artifact",
            "manifest_path": manifest,
            "filenames": ["/t/wasm32-wasip2/plugin/demo_plugin.wasm"],
        })
        .to_string();
        let artifact = wasm_artifact(&line).unwrap();
        assert_eq!(artifact.package, "demo-plugin");
        assert_eq!(
            artifact.wasm,
            PathBuf::from("/t/wasm32-wasip2/plugin/demo_plugin.wasm")
        );
        assert_eq!(
            wasm_artifact(r#"{"reason":"build-finished","success":true}"#),
            None
        );
        assert!(
            discover_crates(&dir.join("no-such-dir"))
                .unwrap()
                .is_empty()
        );
        let found = discover_crates(tmp.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].dir_name.as_str(), found[0].package.as_str()),
            ("demo", "demo-plugin")
        );
    }
}
