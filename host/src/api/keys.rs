//! API keys: created and revoked from the command line, checked on every request.
//!
//! A key is shown once, when created, and only its SHA-256 is kept (`api-keys.json` in the
//! data directory, written whole to a temporary file and renamed, so a reader never sees half
//! a file). Keys are long random strings, not passwords, so a fast hash is enough: nobody
//! brute-forces 160 random bits. The server reads the file on every check, so a key revoked
//! from the command line stops working at once on a running server. A presented key is
//! compared with every stored hash in constant time, and the loop does not stop at a match, so
//! timing says nothing about which key, or how much of one, matched.
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The keys file, in the data directory.
pub const FILE: &str = "api-keys.json";
/// Every key starts so, which lets secret scanners and people recognise one.
const PREFIX: &str = "llt_";

/// What a key may do; each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Read runs, results, history, live progress and metrics.
    Viewer,
    /// Also start and cancel runs.
    Runner,
    /// Also delete runs.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Runner => "runner",
            Role::Admin => "admin",
        }
    }
}

/// A stored key: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// A short public name for the key (listing, revoking, logs).
    pub id: String,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the API keys in {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write the API keys in {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("no API key `{0}` (see `llm-loadtest serve keys list`)")]
    NotFound(String),
    #[error("a key name must be 1 to 64 characters of letters, digits, `-`, `_` or `.`: `{0}`")]
    BadName(String),
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Reads the keys in `data_dir` (none when the file does not exist).
pub fn load(data_dir: &Path) -> Result<Vec<KeyEntry>, KeyError> {
    let path = data_dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| KeyError::Read {
            path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(KeyError::Read {
            path,
            reason: e.to_string(),
        }),
    }
}

fn save(data_dir: &Path, keys: &[KeyEntry]) -> Result<(), KeyError> {
    let path = data_dir.join(FILE);
    let write = |e: std::io::Error| KeyError::Write {
        path: path.clone(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(data_dir).map_err(write)?;
    let tmp = data_dir.join(format!("{FILE}.{}.tmp", std::process::id()));
    let bytes = serde_json::to_vec_pretty(keys).map_err(|e| write(e.into()))?;
    std::fs::write(&tmp, bytes).map_err(write)?;
    std::fs::rename(&tmp, &path).map_err(write)
}

/// Creates a key; returns it (the only time it is seen) and its entry.
pub fn create(data_dir: &Path, name: &str, role: Role) -> Result<(String, KeyEntry), KeyError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(KeyError::BadName(name.to_string()));
    }
    let mut secret = [0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("{PREFIX}{}", hex::encode(secret));
    let digest = hex::encode(hash(&key));
    let entry = KeyEntry {
        // The hash's start names the key: public, and useless for finding the key.
        id: digest[..8].to_string(),
        name: name.to_string(),
        role,
        sha256: digest,
        created_at: crate::result::now_rfc3339(),
        revoked_at: None,
    };
    let mut keys = load(data_dir)?;
    keys.push(entry.clone());
    save(data_dir, &keys)?;
    Ok((key, entry))
}

/// Revokes the key with this ID or name.
pub fn revoke(data_dir: &Path, id_or_name: &str) -> Result<KeyEntry, KeyError> {
    let mut keys = load(data_dir)?;
    let entry = keys
        .iter_mut()
        .find(|k| k.revoked_at.is_none() && (k.id == id_or_name || k.name == id_or_name))
        .ok_or_else(|| KeyError::NotFound(id_or_name.to_string()))?;
    entry.revoked_at = Some(crate::result::now_rfc3339());
    let out = entry.clone();
    save(data_dir, &keys)?;
    Ok(out)
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's ID, for logs ("local" when the server runs without keys).
    pub key_id: String,
    pub role: Role,
}

/// The live keys of a running server. The file is read on every check: it is a few hundred
/// bytes, and so a key revoked from the command line fails on the next request, whatever the
/// file system's timestamp resolution.
#[derive(Debug, Clone)]
pub struct Keys {
    data_dir: PathBuf,
}

impl Keys {
    pub fn new(data_dir: &Path) -> Result<Keys, KeyError> {
        load(data_dir)?;
        Ok(Keys {
            data_dir: data_dir.to_path_buf(),
        })
    }

    fn live(&self) -> Vec<([u8; 32], KeyEntry)> {
        match load(&self.data_dir) {
            Ok(keys) => keys
                .into_iter()
                .filter(|k| k.revoked_at.is_none())
                .filter_map(|k| {
                    let digest: [u8; 32] = hex::decode(&k.sha256).ok()?.try_into().ok()?;
                    Some((digest, k))
                })
                .collect(),
            Err(e) => {
                // Unreadable keys let nobody in; an empty list would open the server.
                tracing::warn!("{e}");
                Vec::new()
            }
        }
    }

    /// Whether the server needs keys: any key created (live or revoked), or a keys file it
    /// cannot read. Only a server that never had keys runs open, and only on loopback.
    pub fn required(&self) -> bool {
        !matches!(load(&self.data_dir), Ok(k) if k.is_empty())
    }

    /// The caller a presented key belongs to, if it is live.
    pub fn check(&self, presented: &str) -> Option<Caller> {
        let digest = hash(presented);
        let mut found = None;
        for (stored, entry) in self.live() {
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(Caller {
                    key_id: entry.id,
                    role: entry.role,
                });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_stored_only_as_its_hash_and_stops_working_when_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(dir.path()).unwrap();
        assert!(!keys.required());
        let (key, entry) = create(dir.path(), "ci", Role::Runner).unwrap();
        assert!(key.starts_with("llt_") && key.len() == 44, "{key}");
        let file = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!file.contains(&key[4..]), "the key itself is never written");
        assert_eq!(
            keys.check(&key),
            Some(Caller {
                key_id: entry.id.clone(),
                role: Role::Runner
            })
        );
        assert_eq!(keys.check(&format!("{key}x")), None);
        assert_eq!(keys.check(""), None);
        assert!(keys.required());
        revoke(dir.path(), "ci").unwrap();
        assert_eq!(keys.check(&key), None, "revoked keys fail at once");
        assert!(
            keys.required(),
            "revoking the last key does not open the server"
        );
        assert!(matches!(
            revoke(dir.path(), "ci"),
            Err(KeyError::NotFound(_))
        ));
        assert!(matches!(
            create(dir.path(), "a b", Role::Viewer),
            Err(KeyError::BadName(_))
        ));
    }

    #[test]
    fn roles_include_the_ones_before_them() {
        assert!(Role::Admin > Role::Runner && Role::Runner > Role::Viewer);
    }
}
