//! The on-disk cache of compiled plugins.
//!
//! Compiling a component takes ~100 ms; loading a precompiled artifact takes
//! well under 1 ms. But loading an artifact is `unsafe` in wasmtime: the
//! bytes are trusted as machine code. So this cache loads only files it wrote
//! itself: they live in its own directory (private to the user), are named
//! by the sha256 of the wasm plus the engine's compatibility hash, are written
//! atomically (temp file + rename), and carry a sha256 of their payload that
//! is checked before wasmtime sees a byte.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::PluginError;

const MAGIC: &[u8; 8] = b"LLTCWSM1";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// Feeds `Hash` output into sha256, so the engine's compatibility hash
/// becomes a stable name (std's hashers promise no stability).
struct ShaHasher(Sha256);

impl std::hash::Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The engine's compatibility key: artifacts made by another wasmtime
/// version or configuration get another file name.
pub(crate) fn engine_key(engine: &Engine) -> String {
    use std::hash::Hash;
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..12])
}

/// Hit and miss counts, so tests and `plugin list` can see the cache work.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) compiles: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

/// Cache activity since the runtime started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Components loaded from a cached artifact.
    pub hits: u64,
    /// Components compiled from wasm.
    pub compiles: u64,
    /// Artifacts written to the cache.
    pub writes: u64,
    /// Cache files found but not used (corrupt, foreign, unsafe permissions).
    pub rejected: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    engine_key: String,
}

impl DiskCache {
    /// Open (creating if needed) the cache directory, private to the user.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<Self, PluginError> {
        let fail = |message: String| PluginError::Cache {
            path: dir.to_path_buf(),
            message,
        };
        fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create it: {e}")))?;
        private_dir(dir).map_err(fail)?;
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            engine_key: engine_key(engine),
        })
    }

    /// Where the artifact for the wasm with this sha256 lives.
    pub(crate) fn path_for(&self, wasm_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{wasm_sha256}-{}.cwasm", self.engine_key))
    }

    /// The cached component for this wasm, if a valid artifact exists.
    /// Every failure is a miss (logged): the caller compiles instead.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        wasm_sha256: &str,
        counters: &Counters,
    ) -> Option<Component> {
        let path = self.path_for(wasm_sha256);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read cached plugin: {e}");
                return None;
            }
        };
        let reject = |why: &str| {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), "ignoring cached plugin: {why}");
            None
        };
        if let Err(why) = owned_like_dir(&path, &self.dir) {
            return reject(&why);
        }
        let Some(payload) = verified_payload(&bytes) else {
            return reject("corrupt (checksum mismatch)");
        };
        // SAFETY: the payload was written by `store` below into this private
        // directory and its sha256 matches, so it is an artifact this program
        // serialized with an engine of the same compatibility hash (part of
        // the file name). wasmtime re-checks the engine configuration too.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, payload) };
        match loaded {
            Ok(component) => {
                counters.hits.fetch_add(1, Ordering::Relaxed);
                Some(component)
            }
            Err(e) => reject(&format!("wasmtime refused it: {e}")),
        }
    }

    /// Save a compiled component. Failures are logged, never fatal: the
    /// cache only saves time.
    pub(crate) fn store(&self, wasm_sha256: &str, component: &Component, counters: &Counters) {
        let path = self.path_for(wasm_sha256);
        if let Err(e) = self.try_store(&path, component) {
            tracing::warn!(path = %path.display(), "cannot cache compiled plugin: {e}");
        } else {
            counters.writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn try_store(&self, path: &Path, component: &Component) -> Result<(), String> {
        let payload = component.serialize().map_err(|e| e.to_string())?;
        let digest = Sha256::digest(&payload);
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| -> std::io::Result<()> {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&digest)?;
            f.write_all(&payload)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(|e| e.to_string())
    }
}

/// The payload of a cache file whose header and checksum are intact.
fn verified_payload(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (header, payload) = bytes.split_at(HEADER_LEN);
    (Sha256::digest(payload).as_slice() == &header[MAGIC.len()..]).then_some(payload)
}

#[cfg(unix)]
fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(dir).map_err(|e| e.to_string())?;
    if meta.permissions().mode() & 0o077 != 0 {
        // Ours to tighten; if it is not ours, that fails and we refuse it.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("it is open to other users and cannot be made private: {e}"))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_dir(_dir: &Path) -> Result<(), String> {
    Ok(())
}

/// A cache file must belong to the cache directory's owner and be writable
/// by nobody else.
#[cfg(unix)]
fn owned_like_dir(file: &Path, dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let f = fs::metadata(file).map_err(|e| e.to_string())?;
    let d = fs::metadata(dir).map_err(|e| e.to_string())?;
    if f.uid() != d.uid() {
        return Err("owned by another user".to_owned());
    }
    if f.mode() & 0o022 != 0 || d.mode() & 0o022 != 0 {
        return Err("writable by other users".to_owned());
    }
    Ok(())
}

#[cfg(not(unix))]
fn owned_like_dir(_file: &Path, _dir: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_checksum_is_verified() {
        let payload = b"compiled bytes";
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(payload));
        file.extend_from_slice(payload);
        assert_eq!(verified_payload(&file), Some(payload.as_slice()));
        let last = file.len() - 1;
        file[last] ^= 1;
        assert_eq!(verified_payload(&file), None);
        assert_eq!(verified_payload(b"short"), None);
    }
}
