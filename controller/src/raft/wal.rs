//! An append-only, checksummed record log in segment files: the durable half of the Raft log
//! store.
//!
//! Each record is `[len: u32 LE][crc32: u32 LE][payload]`. Records go to the newest segment; when
//! it grows past a size the caller starts another, and segments whose content a later one
//! supersedes are deleted whole. Nothing is ever rewritten, so no write waits for a compaction.
//!
//! Replay reads every segment in order. In the newest segment, replay stops at the first bad
//! record and cuts the file there: a crash mid-write (or a power loss that kept later pages of an
//! unsynced write but not earlier ones) looks just like that, and only what was never
//! acknowledged can be lost so. Older segments were synced whole before the next one began, so a
//! bad record in one of them is damage to acknowledged data, and the log refuses to open rather
//! than silently dropping every later entry.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

const HEADER: usize = 8;
/// A record larger than this is corruption, not data (entries are capped far below it).
const MAX_RECORD: usize = 1 << 30;
const SUFFIX: &str = "wal";

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("wal record encoding: {0}")]
    Encode(#[from] bincode::Error),
    #[error(
        "wal {path}: record at byte {offset} is corrupt and later segments exist; refusing to drop acknowledged entries (restore this server from a snapshot or remove its data dir to rejoin)"
    )]
    Corrupt { path: PathBuf, offset: u64 },
    #[error("{old} and the segment directory {segments} both hold a log; refusing to choose one")]
    TwoLogs { old: PathBuf, segments: PathBuf },
    /// An earlier write, sync or rotation failed: what is on disk past the last good record is
    /// unknown (a partial record, pages an fsync error dropped), so nothing more is written.
    #[error("wal stopped after an earlier failure: {0}")]
    Stopped(String),
}

impl From<WalError> for io::Error {
    fn from(e: WalError) -> io::Error {
        match e {
            WalError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        }
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_path_buf(), source }
}

/// One segment file: its sequence number, size, and the highest mark its records carry.
#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    bytes: u64,
    mark: u64,
}

/// The segments on disk and the newest one open for appending; or nothing at all for `-dev`
/// (records are dropped, memory is the only copy).
pub struct Wal {
    dir: Option<PathBuf>,
    /// Oldest first; the last one is the active segment.
    segments: Vec<Segment>,
    active: Option<File>,
    /// The failure that stopped all writing, if one did.
    stopped: Option<String>,
}

pub(super) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.{SUFFIX}"))
}

/// The record that starts at `at` in `bytes`, if one does: its payload and its end.
fn record_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(at..at + HEADER)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(at + HEADER..at + HEADER + len)?;
    (crc32fast::hash(payload) == crc).then_some((payload, at + HEADER + len))
}

/// Reads a segment's records in order; returns the length of its intact prefix and of the file.
fn read_segment<R: DeserializeOwned>(path: &Path, records: &mut Vec<R>) -> Result<(u64, u64), WalError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let mut at = 0;
    while let Some((payload, end)) = record_at(&bytes, at) {
        match bincode::deserialize(payload) {
            Ok(record) => records.push(record),
            Err(_) => break,
        }
        at = end;
    }
    Ok((at as u64, bytes.len() as u64))
}

/// The sequence numbers of the segments in `dir`, oldest first.
fn segment_seqs(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let name = entry.map_err(io_err(dir))?.file_name();
        if let Some(seq) = name
            .to_string_lossy()
            .strip_suffix(&format!(".{SUFFIX}"))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// What a damaged log still holds in one segment: the records of its intact prefix, and whether
/// anything follows that prefix.
#[derive(Debug)]
pub struct IntactPrefix<R> {
    pub records: Vec<R>,
    pub damaged: bool,
}

/// Reads the intact prefix of every segment in `dir`, oldest first, changing nothing: what is
/// left to salvage from a log that [`Wal::open`] refused as corrupt.
pub fn read_intact<R: DeserializeOwned>(dir: &Path) -> Result<Vec<IntactPrefix<R>>, WalError> {
    let mut segments = Vec::new();
    for seq in segment_seqs(dir)? {
        let mut records = Vec::new();
        let (good, actual) = read_segment(&segment_path(dir, seq), &mut records)?;
        segments.push(IntactPrefix { records, damaged: good != actual });
    }
    Ok(segments)
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

impl Wal {
    pub fn in_memory() -> Wal {
        Wal { dir: None, segments: Vec::new(), active: None, stopped: None }
    }

    /// Opens (or creates) the segment directory and returns every intact record in order.
    /// `mark_of` gives each record's mark (the Raft log store: the highest entry index in it).
    pub fn open<R: DeserializeOwned>(
        dir: &Path,
        mark_of: impl Fn(&R) -> u64,
    ) -> Result<(Wal, Vec<R>), WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                // A segment whose head never reached the disk: it never held anything.
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
            }
        }
        let seqs = segment_seqs(dir)?;
        let mut records = Vec::new();
        let mut segments = Vec::new();
        let count = seqs.len();
        for (i, seq) in seqs.into_iter().enumerate() {
            let path = segment_path(dir, seq);
            let first = records.len();
            let (good, actual) = read_segment(&path, &mut records)?;
            if good != actual {
                if i + 1 < count {
                    return Err(WalError::Corrupt { path, offset: good });
                }
                tracing::warn!(path = %path.display(), actual, kept = good, "cutting torn tail of the raft log");
                let file = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
                file.set_len(good).map_err(io_err(&path))?;
                file.sync_all().map_err(io_err(&path))?;
            }
            let mark = records[first..].iter().map(&mark_of).max().unwrap_or(0);
            segments.push(Segment { seq, path, bytes: good, mark });
        }
        let mut wal = Wal { dir: Some(dir.to_path_buf()), segments, active: None, stopped: None };
        match wal.segments.last() {
            Some(last) => {
                let file = OpenOptions::new().append(true).open(&last.path).map_err(io_err(&last.path))?;
                wal.active = Some(file);
            }
            None => wal.create_segment(1, &[], 0)?,
        }
        Ok((wal, records))
    }

    /// Makes segment `seq` holding `head` (already encoded) the active one. The file appears under
    /// its name only once its head is on disk, so a crash or an error leaves either no new
    /// segment (appends go on in the old one) or one that begins with its head.
    fn create_segment(&mut self, seq: u64, head: &[u8], mark: u64) -> Result<(), WalError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let path = segment_path(dir, seq);
        let tmp = path.with_extension("tmp");
        {
            let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
            file.write_all(head).map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(dir)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(io_err(&path))?;
        self.active = Some(file);
        self.segments.push(Segment { seq, path, bytes: head.len() as u64, mark });
        Ok(())
    }

    /// Bytes in the active segment.
    pub fn active_bytes(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.bytes)
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
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

    /// Refuses every write once one has failed; records a new I/O failure as the one that stops
    /// writing (a record that failed to encode wrote nothing and stops nothing).
    fn checked<T>(&mut self, attempt: impl FnOnce(&mut Wal) -> Result<T, WalError>) -> Result<T, WalError> {
        if let Some(reason) = &self.stopped {
            return Err(WalError::Stopped(reason.clone()));
        }
        let result = attempt(self);
        if let Err(e) = &result
            && !matches!(e, WalError::Encode(_))
        {
            self.stopped = Some(e.to_string());
        }
        result
    }

    /// Appends records to the active segment with one write and, when `sync`, one fdatasync.
    /// `mark` is the highest mark among them. Returns the bytes written.
    pub fn append<R: Serialize>(&mut self, records: &[R], sync: bool, mark: u64) -> Result<u64, WalError> {
        let buf = Self::encode(records)?;
        self.checked(|wal| wal.write_encoded(&buf, sync, mark))
    }

    fn write_encoded(&mut self, buf: &[u8], sync: bool, mark: u64) -> Result<u64, WalError> {
        if let (Some(file), Some(segment)) = (&mut self.active, self.segments.last()) {
            file.write_all(buf).map_err(io_err(&segment.path))?;
            if sync {
                file.sync_data().map_err(io_err(&segment.path))?;
            }
        }
        if let Some(segment) = self.segments.last_mut() {
            segment.bytes += buf.len() as u64;
            segment.mark = segment.mark.max(mark);
        }
        Ok(buf.len() as u64)
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.checked(|wal| {
            if let (Some(file), Some(segment)) = (&mut wal.active, wal.segments.last()) {
                file.sync_data().map_err(io_err(&segment.path))?;
            }
            Ok(())
        })
    }

    /// Closes the active segment (synced) and starts a new one that begins with `head`: records
    /// that restate, on their own, what older segments established and later records need.
    pub fn rotate<R: Serialize>(&mut self, head: &[R], mark: u64) -> Result<(), WalError> {
        if self.dir.is_none() {
            return Ok(());
        }
        let head = Self::encode(head)?;
        self.sync()?;
        let next = self.segments.last().map_or(1, |s| s.seq + 1);
        // A failure after the rename would leave a head that later appends (in the old segment)
        // do not follow: writing stops, so the head stays the last word.
        self.checked(|wal| wal.create_segment(next, &head, mark))
    }

    /// Deletes every segment but the active one whose records all carry a mark of at most
    /// `mark`, oldest first, stopping at the first that does not qualify. The caller makes sure
    /// durable records in later segments supersede them. Returns how many were deleted.
    pub fn drop_through(&mut self, mark: u64) -> Result<usize, WalError> {
        self.checked(|wal| wal.delete_through(mark))
    }

    fn delete_through(&mut self, mark: u64) -> Result<usize, WalError> {
        let keep_from = self
            .segments
            .iter()
            .take(self.segments.len().saturating_sub(1))
            .position(|s| s.mark > mark)
            .unwrap_or(self.segments.len().saturating_sub(1));
        for segment in self.segments.drain(..keep_from) {
            fs::remove_file(&segment.path).map_err(io_err(&segment.path))?;
        }
        if keep_from > 0
            && let Some(dir) = &self.dir
        {
            sync_dir(dir)?;
        }
        Ok(keep_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn no_mark(_: &String) -> u64 {
        0
    }

    fn only_segment(dir: &Path) -> PathBuf {
        let mut files: Vec<PathBuf> =
            fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").path()).collect();
        files.sort();
        files.pop().expect("a segment")
    }

    #[test]
    fn replays_records_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut wal, records) = Wal::open(dir.path(), no_mark).expect("open new");
            assert!(records.is_empty());
            wal.append(&strings(&["a", "b"]), true, 0).expect("append");
            wal.append(&strings(&["c"]), true, 0).expect("append");
        }
        // A crash mid-write: half a record at the end, then zeros as a filesystem may leave.
        let mut f = OpenOptions::new().append(true).open(only_segment(dir.path())).expect("reopen");
        f.write_all(&[42, 0, 0, 0, 1, 2]).expect("torn write");
        f.write_all(&[0; 64]).expect("zeros");
        drop(f);
        let (mut wal, records) = Wal::open(dir.path(), no_mark).expect("open torn");
        assert_eq!(records, strings(&["a", "b", "c"]));
        wal.append(&strings(&["d"]), true, 0).expect("append after cut");
        drop(wal);
        let (_, records) = Wal::open(dir.path(), no_mark).expect("open again");
        assert_eq!(records, strings(&["a", "b", "c", "d"]));
    }

    #[test]
    fn corrupt_last_record_of_the_newest_segment_ends_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), no_mark).expect("open");
        wal.append(&strings(&["first", "second"]), true, 0).expect("append");
        drop(wal);
        let path = only_segment(dir.path());
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).expect("write");
        let (_, records) = Wal::open(dir.path(), no_mark).expect("open corrupt");
        assert_eq!(records, strings(&["first"]));
    }

    #[test]
    fn in_the_newest_segment_a_bad_record_ends_replay_even_with_intact_ones_after_it() {
        // A power loss may keep later pages of an unsynced write and not earlier ones: in the
        // newest segment that is not told apart from damage, and replay ends at the bad record.
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), no_mark).expect("open");
        wal.append(&strings(&["one", "two", "three"]), true, 0).expect("append");
        drop(wal);
        let path = only_segment(dir.path());
        let mut bytes = fs::read(&path).expect("read");
        // Flip a byte of the second record's payload ("two"); the third stays intact.
        let second_payload = HEADER + 8 + 3 + HEADER;
        bytes[second_payload + 8] ^= 0xff;
        fs::write(&path, &bytes).expect("write");
        let (_, records) = Wal::open(dir.path(), no_mark).expect("open");
        assert_eq!(records, strings(&["one"]));
        assert_eq!(fs::metadata(&path).expect("meta").len(), (HEADER + 8 + 3) as u64, "cut after the first");
    }

    #[test]
    fn corruption_in_an_older_segment_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), no_mark).expect("open");
        wal.append(&strings(&["one", "two"]), true, 0).expect("append");
        wal.rotate(&strings(&["head"]), 0).expect("rotate");
        wal.append(&strings(&["three"]), true, 0).expect("append");
        drop(wal);
        let first = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&first).expect("read");
        bytes[HEADER + 1] ^= 0xff;
        fs::write(&first, &bytes).expect("write");
        match Wal::open(dir.path(), no_mark) {
            Err(WalError::Corrupt { path, offset }) => {
                assert_eq!((path, offset), (first, 0));
            }
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok((_, records)) => panic!("opened a corrupt log: {records:?}"),
        }
    }

    #[test]
    fn segments_rotate_and_old_ones_are_dropped_by_mark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mark = |r: &(u64, String)| r.0;
        let (mut wal, _) = Wal::open(dir.path(), mark).expect("open");
        wal.append(&[(5u64, "a".to_string())], true, 5).expect("append");
        wal.rotate(&[(0u64, "head-2".to_string())], 0).expect("rotate");
        wal.append(&[(9u64, "b".to_string())], true, 9).expect("append");
        wal.rotate(&[(0u64, "head-3".to_string())], 0).expect("rotate");
        wal.append(&[(12u64, "c".to_string())], true, 12).expect("append");
        assert_eq!(wal.segment_count(), 3);
        // Segment 2 holds mark 9 > 6: only segment 1 goes.
        assert_eq!(wal.drop_through(6).expect("drop"), 1);
        // The active segment is never dropped, whatever its mark.
        assert_eq!(wal.drop_through(100).expect("drop"), 1);
        assert_eq!(wal.segment_count(), 1);
        drop(wal);
        let (wal, records) = Wal::open(dir.path(), mark).expect("reopen");
        assert_eq!(records, vec![(0, "head-3".to_string()), (12, "c".to_string())]);
        assert_eq!(wal.segment_count(), 1);
    }
}

#[cfg(test)]
mod stop_tests {
    use super::*;

    #[test]
    fn after_a_failed_write_nothing_more_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), |_: &String| 0).expect("open");
        wal.append(&["kept".to_string()], true, 0).expect("append");
        // The segment directory goes away: the next rotation fails.
        fs::remove_dir_all(dir.path()).expect("remove");
        assert!(wal.rotate(&["head".to_string()], 0).is_err());
        match wal.append(&["after".to_string()], true, 0) {
            Err(WalError::Stopped(_)) => {}
            other => panic!("a write after a failure must be refused, got {other:?}"),
        }
    }
}
