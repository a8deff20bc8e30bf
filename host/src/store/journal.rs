//! A run in progress writes to a journal of its own, not to the store.
//!
//! sled is one process at a time, and a run lasts minutes: holding the store for its length
//! locked out `history` in another terminal, a second run, and the coming API server. So the
//! store is opened only for moments (register the run at its start, merge it at its end, any
//! other command's work), and while the run goes its records are appended to
//! `journals/<ID>.jsonl` beside the store: the run's entry on the first line, then one
//! `[level, record]` per line. The writer holds an exclusive lock on the file for its whole
//! life, which the operating system drops when the process dies however it dies: a journal
//! whose lock can be taken belongs to a dead run, and the next open of the store merges it
//! (see `recover`). Readers need no lock: a line is complete or it is the torn tail of a
//! killed writer, which is skipped. Other designs and why not: per-run sled databases need
//! the same merge and sled's lock would still be held per run; routing every command through
//! a running server does not serve a CLI used alone.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{RunEntry, StoreError, decode_entry};
use crate::metrics::RequestRecord;

/// Where the journals of `data_dir` live.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journals")
}

/// The journal of run `id`.
pub fn path(data_dir: &Path, id: &str) -> PathBuf {
    dir(data_dir).join(format!("{id}.jsonl"))
}

fn error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Journal {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The writing end, holding the file's lock until it is dropped.
pub struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Writer {
    /// Creates the journal of `entry`'s run, locked, with the entry on its first line.
    pub fn create(data_dir: &Path, entry: &RunEntry) -> Result<Writer, StoreError> {
        let path = path(data_dir, &entry.id);
        std::fs::create_dir_all(dir(data_dir)).map_err(|e| error(&path, e))?;
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| error(&path, e))?;
        file.try_lock().map_err(|e| error(&path, e))?;
        let mut w = Writer {
            out: BufWriter::new(file),
            path,
        };
        let line = serde_json::to_string(entry).map_err(|e| error(&w.path, e))?;
        w.line(&line)?;
        w.sync()?;
        Ok(w)
    }

    fn line(&mut self, line: &str) -> Result<(), StoreError> {
        self.out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| error(&self.path, e))
    }

    pub fn append(&mut self, level: usize, record: &RequestRecord) -> Result<(), StoreError> {
        let line = serde_json::to_string(&(level, record)).map_err(|e| error(&self.path, e))?;
        self.line(&line)
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.out.flush().map_err(|e| error(&self.path, e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| error(&self.path, e))
    }

    /// Deletes the journal once its run is in the store; the lock goes with the file.
    pub fn remove(self) -> Result<(), StoreError> {
        std::fs::remove_file(&self.path).map_err(|e| error(&self.path, e))
    }
}

/// Whether a live process may still write the journal at `path`: only a lock this process
/// could take proves its writer gone. A file system that cannot lock answers "alive", so a
/// live run is never merged under its writer.
pub fn writer_alive(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => f.try_lock_shared().is_err(),
        Err(_) => false,
    }
}

/// What a journal holds: its run's entry as the run began, records by level, and how many
/// lines could not be read (the torn tail of a killed writer).
pub struct Contents {
    pub entry: RunEntry,
    pub records: Vec<Vec<RequestRecord>>,
    pub unreadable: usize,
}

/// Reads the journal at `path`.
pub fn read(path: &Path) -> Result<Contents, StoreError> {
    let file = File::open(path).map_err(|e| error(path, e))?;
    let mut lines = BufReader::new(file).lines();
    let first = lines
        .next()
        .ok_or_else(|| error(path, "it is empty"))?
        .map_err(|e| error(path, e))?;
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entry = decode_entry(&id, first.as_bytes())?;
    let mut records: Vec<Vec<RequestRecord>> = Vec::new();
    let mut unreadable = 0;
    for line in lines {
        let parsed = line
            .ok()
            .and_then(|l| serde_json::from_str::<(usize, RequestRecord)>(&l).ok());
        match parsed {
            Some((level, r)) => {
                if records.len() <= level {
                    records.resize_with(level + 1, Vec::new);
                }
                records[level].push(r);
            }
            None => unreadable += 1,
        }
    }
    Ok(Contents {
        entry,
        records,
        unreadable,
    })
}

/// Every journal under `data_dir`.
pub fn all(data_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir(data_dir))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default()
}
