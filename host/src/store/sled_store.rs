//! The [`Store`] on sled 0.34.
//!
//! Layout (version [`STORE_SCHEMA_VERSION`]):
//! - tree `meta`: `schema_version` → u32 big-endian.
//! - tree `runs`: run ID → [`RunEntry`] as JSON.
//! - tree `records`: `ID/` + level (u32 BE) + index (u64 BE) → one
//!   [`RequestRecord`] as JSON. Big-endian numbers make sled's key order the
//!   level-then-issue order, and `/` (absent from IDs) keeps prefix scans of
//!   one run from reaching another.
//!
//! sled takes an exclusive file lock on open, so while this store is open no
//! other process can be writing to it; every process holds it only for moments (runs in
//! progress write to journals, see `journal`), and an open waits for the lock.
//!
//! Memory: sled builds its tree in its page cache, and one batch stays in memory whole
//! until it is applied. Measured on 200,000 records of 700 bytes (sled 0.34, release): one
//! batch peaked at 1.3 GB resident with the default 1 GiB cache and 2.3 GB with a 32 MiB
//! one; batches of [`RECORDS_PER_BATCH`] with a [`CACHE_BYTES`] cache peaked at 71 MB (and
//! 98 MB for 1,000,000 records, written in 19 s). So records go in bounded batches and
//! the cache is capped. A level's records are so not written atomically; a run is: its
//! entry, written after its records, is what marks it complete (see `recorder`).
use std::path::{Path, PathBuf};

use super::{RunEntry, STORE_SCHEMA_VERSION, Store, StoreError, decode_entry};
use crate::metrics::RequestRecord;

const VERSION_KEY: &[u8] = b"schema_version";
/// Records per sled batch: bounds the memory a batch holds until it is applied.
pub(super) const RECORDS_PER_BATCH: usize = 2_000;
/// sled's page cache. Reads of a run are sequential scans, which a larger cache does not
/// speed up; writes of a large run are what it would grow with.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

pub struct SledStore {
    data_dir: PathBuf,
    path: PathBuf,
    db: sled::Db,
    runs: sled::Tree,
    records: sled::Tree,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish()
    }
}

/// How long an open waits for sled's lock before answering [`StoreError::Locked`].
///
/// sled releases its lock file when the last of its background jobs lets go of the
/// database, which can be a moment after the `Db` itself was dropped: a store closed and
/// reopened in one process (tests, a server that reopens) can find its own lock still held.
/// That hold ends by itself within milliseconds, but when is sled's internal affair with no
/// event to wait on, so the open polls the lock; a store another live process holds stays
/// locked, and is reported as such once the wait is over.
/// The wait is long enough for another process's moment with the store: a run merging its
/// journal of some 100,000 records at its end.
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(10);

fn open_db(path: &Path, wait: std::time::Duration) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(500))
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                if started.elapsed() >= wait {
                    return Err(StoreError::Locked {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(LOCK_POLL);
            }
            Err(other) => {
                return Err(StoreError::Open {
                    path: path.to_path_buf(),
                    reason: other.to_string(),
                });
            }
        }
    }
}

fn record_prefix(id: &str) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.push(b'/');
    k
}

fn record_key(id: &str, level: usize, index: u64) -> Vec<u8> {
    let mut k = record_prefix(id);
    k.extend_from_slice(&(level as u32).to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

impl SledStore {
    /// Open the store under `dir` (the data directory), creating it when
    /// absent. Refuses another layout version instead of misreading it.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        Self::open_waiting(dir, LOCK_WAIT)
    }

    /// [`SledStore::open`], waiting at most `wait` for another holder to let go.
    pub fn open_waiting(dir: &Path, wait: std::time::Duration) -> Result<SledStore, StoreError> {
        let path = dir.join("runs.sled");
        std::fs::create_dir_all(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let db = open_db(&path, wait)?;
        let meta = db.open_tree("meta")?;
        let runs = db.open_tree("runs")?;
        let records = db.open_tree("records")?;
        match meta.get(VERSION_KEY)? {
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::NotAStore { path: path.clone() })?;
                if found != STORE_SCHEMA_VERSION {
                    return Err(StoreError::Version {
                        path,
                        found,
                        supported: STORE_SCHEMA_VERSION,
                    });
                }
            }
            None => {
                if !runs.is_empty() || !records.is_empty() {
                    return Err(StoreError::NotAStore { path });
                }
                meta.insert(VERSION_KEY, &STORE_SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
        }
        Ok(SledStore {
            data_dir: dir.to_path_buf(),
            path,
            db,
            runs,
            records,
        })
    }

    /// The sled database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    pub(crate) fn set_layout_version(&self, v: u32) -> Result<(), StoreError> {
        self.db
            .open_tree("meta")?
            .insert(VERSION_KEY, &v.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn put_raw_entry(&self, id: &str, json: &[u8]) -> Result<(), StoreError> {
        self.runs.insert(id.as_bytes(), json)?;
        Ok(())
    }
}

fn corrupt(id: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        id: id.to_string(),
        reason: e.to_string(),
    }
}

impl Store for SledStore {
    fn put_entry(&self, entry: &RunEntry) -> Result<(), StoreError> {
        let mut e = entry.clone();
        for l in &mut e.result.levels {
            l.requests = None;
        }
        let bytes = serde_json::to_vec(&e).map_err(|err| corrupt(&e.id, err))?;
        self.runs.insert(e.id.as_bytes(), bytes)?;
        Ok(())
    }

    fn put_records(
        &self,
        id: &str,
        level: usize,
        records: &[RequestRecord],
    ) -> Result<(), StoreError> {
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            let mut batch = sled::Batch::default();
            for r in chunk {
                let v = serde_json::to_vec(r).map_err(|e| corrupt(id, e))?;
                batch.insert(record_key(id, level, r.index), v);
            }
            self.records.apply_batch(batch)?;
        }
        Ok(())
    }

    fn ids(&self) -> Result<Vec<String>, StoreError> {
        self.runs
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                Ok(String::from_utf8_lossy(&k).into_owned())
            })
            .collect()
    }

    fn entry(&self, id: &str) -> Result<Option<RunEntry>, StoreError> {
        match self.runs.get(id.as_bytes())? {
            Some(v) => decode_entry(id, &v).map(Some),
            None => Ok(None),
        }
    }

    fn records(&self, id: &str) -> Result<Vec<Vec<RequestRecord>>, StoreError> {
        let prefix = record_prefix(id);
        let mut out: Vec<Vec<RequestRecord>> = Vec::new();
        for kv in self.records.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let level_bytes = k
                .get(prefix.len()..prefix.len() + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .ok_or_else(|| corrupt(id, "a record key is too short"))?;
            let level = u32::from_be_bytes(level_bytes) as usize;
            let record: RequestRecord = serde_json::from_slice(&v).map_err(|e| corrupt(id, e))?;
            if out.len() <= level {
                out.resize_with(level + 1, Vec::new);
            }
            out[level].push(record);
        }
        Ok(out)
    }

    fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.runs.remove(id.as_bytes())?.is_some();
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for k in self.records.scan_prefix(record_prefix(id)).keys() {
            batch.remove(k?);
            pending += 1;
            if pending == RECORDS_PER_BATCH {
                self.records.apply_batch(std::mem::take(&mut batch))?;
                pending = 0;
            }
        }
        self.records.apply_batch(batch)?;
        self.db.flush()?;
        Ok(existed)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
