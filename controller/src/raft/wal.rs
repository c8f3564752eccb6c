//! An append-only, checksummed record file: the durable half of the Raft log store.
//!
//! Each record is `[len: u32 LE][crc32: u32 LE][payload]`. Replay stops at the first torn or corrupt
//! record and cuts the file there, so a crash mid-write loses only what was never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

const HEADER: usize = 8;
/// A record larger than this is corruption, not data (entries are capped far below it).
const MAX_RECORD: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("wal record encoding: {0}")]
    Encode(#[from] bincode::Error),
}

impl From<WalError> for io::Error {
    fn from(e: WalError) -> io::Error {
        match e {
            WalError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// The file, or nothing at all for `-dev` (records are dropped; memory is the only copy).
pub struct Wal {
    file: Option<(PathBuf, File)>,
    size: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_path_buf(), source }
}

impl Wal {
    pub fn in_memory() -> Wal {
        Wal { file: None, size: 0 }
    }

    /// Opens (or creates) the file and returns every intact record in order.
    pub fn open<R: DeserializeOwned>(path: &Path) -> Result<(Wal, Vec<R>), WalError> {
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io_err(path))?;
        let mut records = Vec::new();
        let mut good_len: u64 = 0;
        {
            let mut reader = BufReader::new(&mut file);
            let mut header = [0u8; HEADER];
            loop {
                match reader.read_exact(&mut header) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(io_err(path)(e)),
                }
                let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
                let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
                if len > MAX_RECORD {
                    break;
                }
                let mut payload = vec![0u8; len];
                if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
                    break;
                }
                match bincode::deserialize(&payload) {
                    Ok(record) => records.push(record),
                    Err(_) => break,
                }
                good_len += (HEADER + len) as u64;
            }
        }
        let actual = file.metadata().map_err(io_err(path))?.len();
        if actual != good_len {
            tracing::warn!(path = %path.display(), actual, kept = good_len, "cutting torn tail of the raft log");
            file.set_len(good_len).map_err(io_err(path))?;
            file.sync_all().map_err(io_err(path))?;
        }
        Ok((Wal { file: Some((path.to_path_buf(), file)), size: good_len }, records))
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn encode<R: Serialize>(records: &[R]) -> Result<Vec<u8>, WalError> {
        let mut buf = Vec::new();
        for record in records {
            let payload = bincode::serialize(record)?;
            buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            buf.extend_from_slice(&payload);
        }
        Ok(buf)
    }

    /// Appends records with one write and, when `sync`, one fdatasync.
    pub fn append<R: Serialize>(&mut self, records: &[R], sync: bool) -> Result<(), WalError> {
        let buf = Self::encode(records)?;
        if let Some((path, file)) = &mut self.file {
            file.write_all(&buf).map_err(io_err(path))?;
            if sync {
                file.sync_data().map_err(io_err(path))?;
            }
        }
        self.size += buf.len() as u64;
        Ok(())
    }

    /// Replaces the file's content by `records` atomically (write aside, fsync, rename, fsync dir).
    pub fn rewrite<R: Serialize>(&mut self, records: &[R]) -> Result<(), WalError> {
        let buf = Self::encode(records)?;
        if let Some((path, file)) = &mut self.file {
            let tmp = path.with_extension("rewrite");
            {
                let mut out = File::create(&tmp).map_err(io_err(&tmp))?;
                out.write_all(&buf).map_err(io_err(&tmp))?;
                out.sync_all().map_err(io_err(&tmp))?;
            }
            fs::rename(&tmp, &*path).map_err(io_err(path))?;
            if let Some(dir) = path.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
            }
            *file = OpenOptions::new().read(true).append(true).open(&*path).map_err(io_err(path))?;
        }
        self.size = buf.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_records_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.wal");
        {
            let (mut wal, records) = Wal::open::<String>(&path).expect("open new");
            assert!(records.is_empty());
            wal.append(&["a".to_string(), "b".to_string()], true).expect("append");
            wal.append(&["c".to_string()], true).expect("append");
        }
        // A crash mid-write: half a record at the end.
        let mut f = OpenOptions::new().append(true).open(&path).expect("reopen");
        f.write_all(&[42, 0, 0, 0, 1, 2]).expect("torn write");
        drop(f);
        let (mut wal, records) = Wal::open::<String>(&path).expect("open torn");
        assert_eq!(records, vec!["a", "b", "c"]);
        wal.append(&["d".to_string()], true).expect("append after cut");
        drop(wal);
        let (_, records) = Wal::open::<String>(&path).expect("open again");
        assert_eq!(records, vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn corrupt_record_ends_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.wal");
        let (mut wal, _) = Wal::open::<String>(&path).expect("open");
        wal.append(&["first".to_string(), "second".to_string()], true).expect("append");
        drop(wal);
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).expect("write");
        let (_, records) = Wal::open::<String>(&path).expect("open corrupt");
        assert_eq!(records, vec!["first"]);
    }

    #[test]
    fn rewrite_replaces_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.wal");
        let (mut wal, _) = Wal::open::<String>(&path).expect("open");
        wal.append(&vec!["x".to_string(); 10], true).expect("append");
        wal.rewrite(&["y".to_string()]).expect("rewrite");
        wal.append(&["z".to_string()], true).expect("append");
        drop(wal);
        let (_, records) = Wal::open::<String>(&path).expect("reopen");
        assert_eq!(records, vec!["y", "z"]);
    }
}
