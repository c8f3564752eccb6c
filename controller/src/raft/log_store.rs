//! The Raft log store: entries in memory for reads, made durable by a writer thread that commits
//! every pending append with one fdatasync (group commit), into WAL segments that are deleted
//! whole once a purge has made them history.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, OptionalSend, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};

use super::log_salvage;
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use super::wal::{Wal, WalError, io_err, segment_path, sync_dir};

/// One durable change to the log, as written to the WAL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum LogOp {
    Append(Vec<Entry>),
    /// Remove entries at and after this index.
    Truncate(u64),
    /// Remove entries up to and including this log id.
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
    /// Entries up to this index have been written (in a segment's head: by earlier segments), so
    /// a log damaged in an earlier segment still knows how far it reached (log_salvage.rs).
    Reached(u64),
    /// Set when a damaged log was set aside: this server takes no part in elections until its
    /// log reaches this index again; `None` once it has.
    Recovering(Option<u64>),
}

/// What the log holds now; also what a WAL rewrite writes.
#[derive(Debug, Default)]
struct LogMem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    reached: u64,
    recovering: Option<u64>,
}

impl LogMem {
    /// Applies `op`; a purge returns the entries it removed, for the caller to free elsewhere.
    fn apply(&mut self, op: &LogOp) -> Option<BTreeMap<u64, Entry>> {
        match op {
            LogOp::Append(entries) => {
                // Replaying a segment may meet entries a later-restated purge already removed.
                let purged = self.last_purged.map(|p| p.index);
                for e in entries.iter().filter(|e| purged.is_none_or(|p| e.log_id.index > p)) {
                    self.entries.insert(e.log_id.index, e.clone());
                }
                self.reached = self.reached.max(op.highest_index());
            }
            LogOp::Truncate(since) => {
                self.entries.split_off(since);
            }
            LogOp::Purge(upto) => {
                let kept = self.entries.split_off(&(upto.index + 1));
                self.last_purged = Some(*upto);
                return Some(std::mem::replace(&mut self.entries, kept));
            }
            LogOp::Vote(v) => self.vote = Some(*v),
            LogOp::Committed(c) => self.committed = *c,
            LogOp::Reached(r) => self.reached = self.reached.max(*r),
            LogOp::Recovering(until) => self.recovering = *until,
        }
        None
    }

    fn head(&self) -> Head {
        Head {
            vote: self.vote,
            last_purged: self.last_purged,
            committed: self.committed,
            reached: self.reached,
            recovering: self.recovering,
        }
    }
}

/// What a new WAL segment starts with: the state besides the entries (which the segments that
/// hold them keep until a purge makes them history). The writer keeps the head of what it has
/// written, never of what is only queued: a head that ran ahead of the entries on disk (a commit
/// index or a purge past them) would make a crashed server unable to start.
#[derive(Debug, Clone, Copy, Default)]
struct Head {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
    committed: Option<LogId>,
    reached: u64,
    recovering: Option<u64>,
}

impl Head {
    fn note(&mut self, op: &LogOp) {
        match op {
            LogOp::Vote(v) => self.vote = Some(*v),
            LogOp::Purge(p) => self.last_purged = Some(*p),
            LogOp::Committed(c) => self.committed = *c,
            LogOp::Append(_) => self.reached = self.reached.max(op.highest_index()),
            LogOp::Reached(r) => self.reached = self.reached.max(*r),
            LogOp::Recovering(until) => self.recovering = *until,
            LogOp::Truncate(_) => {}
        }
    }

    fn ops(&self) -> Vec<LogOp> {
        let mut ops = Vec::new();
        if let Some(v) = self.vote {
            ops.push(LogOp::Vote(v));
        }
        if let Some(p) = self.last_purged {
            ops.push(LogOp::Purge(p));
        }
        ops.push(LogOp::Committed(self.committed));
        if self.reached > 0 {
            ops.push(LogOp::Reached(self.reached));
        }
        if let Some(until) = self.recovering {
            ops.push(LogOp::Recovering(Some(until)));
        }
        ops
    }
}

impl LogOp {
    /// The highest entry index this record holds (0 for none): a WAL segment is history once a
    /// durable purge covers its highest one.
    pub(super) fn highest_index(&self) -> u64 {
        match self {
            LogOp::Append(entries) => entries.iter().map(|e| e.log_id.index).max().unwrap_or(0),
            _ => 0,
        }
    }
}

enum Done {
    Flushed(LogFlushed<TypeConfig>),
    Waiter(mpsc::SyncSender<Result<(), String>>),
    Nothing,
}

struct WriteReq {
    op: LogOp,
    sync: bool,
    done: Done,
}

struct Shared {
    mem: Mutex<LogMem>,
    /// Sends are made while `mem` is locked, so the writer sees ops in the order memory took them.
    tx: Mutex<Option<mpsc::Sender<WriteReq>>>,
    /// Bytes written to the WAL since the process started.
    appended: AtomicU64,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// How far the state machine's snapshot on disk reaches, once [`LogStore::purge_behind`] set
    /// it: a purge waits for it.
    snapshot_durable: Mutex<Option<tokio::sync::watch::Receiver<u64>>>,
}

/// The log store handed to openraft. Cloning shares the same log.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

fn storage_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageError::IO { source: StorageIOError::write_logs(AnyError::new(&e)) }
}

fn lock_mem(shared: &Shared) -> std::sync::MutexGuard<'_, LogMem> {
    shared.mem.lock().unwrap_or_else(|p| p.into_inner())
}

/// Start a new WAL segment when the active one has grown past this.
const SEGMENT_BYTES: u64 = 16 << 20;
/// How long a purge waits for the snapshot that covers it to be on disk.
const PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
/// A WAL write (with its fdatasync) slower than this is logged.
const SLOW_WRITE: std::time::Duration = std::time::Duration::from_millis(50);
/// Where the log lived before it was split into segments (one file, compacted by rewriting).
const SINGLE_FILE: &str = "raft-log.wal";
/// The directory of WAL segments, under the Raft data dir.
pub(super) const SEGMENTS: &str = "raft-log";

impl LogStore {
    /// Opens the log under `dir` (`None`: memory only, for `-dev`).
    pub fn open(dir: Option<&Path>) -> Result<LogStore, WalError> {
        LogStore::open_with_segments_of(dir, SEGMENT_BYTES)
    }

    /// [`LogStore::open`] with WAL segments of about `segment_bytes`.
    fn open_with_segments_of(dir: Option<&Path>, segment_bytes: u64) -> Result<LogStore, WalError> {
        let mut mem = LogMem::default();
        let wal = match dir {
            Some(dir) => {
                let segments = dir.join(SEGMENTS);
                log_salvage::finish_interrupted(dir, &segments)?;
                adopt_single_file(dir, &segments)?;
                let (mut wal, ops) = match Wal::open::<LogOp>(&segments, LogOp::highest_index) {
                    Err(WalError::Corrupt { path, offset }) => {
                        log_salvage::set_aside(dir, &segments, path, offset)?;
                        Wal::open::<LogOp>(&segments, LogOp::highest_index)?
                    }
                    opened => opened?,
                };
                for op in &ops {
                    drop(mem.apply(op));
                }
                // The active segment must begin with the state (vote above all) that older
                // segments hold, or deleting those would lose it: a crash between creating a
                // segment and writing its head leaves one that does not.
                let head = mem.head().ops();
                if wal.active_bytes() == 0 {
                    wal.append(&head, true, 0)?;
                } else {
                    wal.rotate(&head, 0)?;
                }
                wal
            }
            None => Wal::in_memory(),
        };
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            mem: Mutex::new(mem),
            tx: Mutex::new(Some(tx)),
            appended: AtomicU64::new(0),
            writer: Mutex::new(None),
            snapshot_durable: Mutex::new(None),
        });
        let writer_shared = shared.clone();
        let written = lock_mem(&shared).head();
        let handle = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer_loop(wal, rx, writer_shared, written, segment_bytes))
            .map_err(|source| WalError::Io { path: "raft-log-writer".into(), source })?;
        *shared.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(LogStore { shared })
    }

    /// Records `op` in memory and queues it for the writer.
    fn submit(&self, op: LogOp, sync: bool, done: Done) -> Result<(), StorageError> {
        let purged = {
            let mut mem = lock_mem(&self.shared);
            let purged = mem.apply(&op);
            let tx = self.shared.tx.lock().unwrap_or_else(|p| p.into_inner());
            let sender =
                tx.as_ref().ok_or_else(|| storage_err(std::io::Error::other("log writer stopped")))?;
            sender
                .send(WriteReq { op, sync, done })
                .map_err(|_| storage_err(std::io::Error::other("log writer stopped")))?;
            purged
        };
        // Freeing a purge's entries (up to tens of megabytes of small allocations) takes long
        // enough to stall the log if done under its lock, or the Raft core if done here.
        if let Some(entries) = purged.filter(|e| e.len() > 64) {
            let _ = std::thread::Builder::new().name("raft-log-free".into()).spawn(move || drop(entries));
        }
        Ok(())
    }

    /// Queues `op` and waits until it is on disk.
    pub(super) fn submit_and_wait(&self, op: LogOp) -> Result<(), StorageError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(op, true, Done::Waiter(tx))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(storage_err(std::io::Error::other(msg))),
            Err(_) => Err(storage_err(std::io::Error::other("log writer stopped"))),
        }
    }

    /// The last entry in the log (or the last purged one when the log is empty).
    pub fn last_log_id(&self) -> Option<LogId> {
        let mem = lock_mem(&self.shared);
        mem.entries.values().next_back().map(|e| e.log_id).or(mem.last_purged)
    }

    /// Stops the writer thread after it has written everything queued.
    pub fn close(&self) {
        self.shared.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// [`LogStore::close`], then waits for the writer to finish.
    #[cfg(test)]
    pub(super) fn close_and_join(&self) {
        self.close();
        if let Some(writer) = self.shared.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = writer.join();
        }
    }

    /// Purges wait until the snapshot on disk reaches them. openraft purges right after it hands a
    /// received snapshot to the state machine, before that is written: a crash in between would
    /// leave a log purged past the snapshot on disk, which the server cannot start from.
    pub fn purge_behind(&self, durable: tokio::sync::watch::Receiver<u64>) {
        *self.shared.snapshot_durable.lock().unwrap_or_else(|p| p.into_inner()) = Some(durable);
    }

    #[cfg(test)]
    pub(super) fn vote_now(&self) -> Option<Vote> {
        lock_mem(&self.shared).vote
    }

    /// While a log damaged in the middle is being rebuilt from the leader (log_salvage.rs): the
    /// index this server's log must reach before it votes or stands for election again.
    pub fn recovering_until(&self) -> Option<u64> {
        lock_mem(&self.shared).recovering
    }

    /// Records, durably, that the rebuilt log has reached [`LogStore::recovering_until`].
    pub fn finish_recovery(&self) -> Result<(), StorageError> {
        self.submit_and_wait(LogOp::Recovering(None))
    }

    /// Bytes written to the WAL since start: what the snapshot trigger counts.
    pub fn appended_bytes(&self) -> u64 {
        self.shared.appended.load(Ordering::Relaxed)
    }
}

/// Moves a log kept in one file (before segments) into the segment directory as its first
/// segment, so an upgraded server keeps its log. Retried on every start while the file is there,
/// so a crash halfway through loses nothing.
fn adopt_single_file(dir: &Path, segments: &Path) -> Result<(), WalError> {
    let old = dir.join(SINGLE_FILE);
    if !old.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(segments).map_err(io_err(segments))?;
    let has_segments = std::fs::read_dir(segments)
        .map_err(io_err(segments))?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".wal"));
    if has_segments {
        return Err(WalError::TwoLogs { old, segments: segments.to_path_buf() });
    }
    std::fs::rename(&old, segment_path(segments, 1)).map_err(io_err(&old))?;
    sync_dir(segments)?;
    sync_dir(dir)
}

fn writer_loop(
    mut wal: Wal,
    rx: mpsc::Receiver<WriteReq>,
    shared: Arc<Shared>,
    mut written: Head,
    segment_bytes: u64,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let sync = batch.iter().any(|r| r.sync);
        let purged = batch
            .iter()
            .filter_map(|r| match r.op {
                LogOp::Purge(upto) => Some(upto.index),
                _ => None,
            })
            .max();
        let ops: Vec<&LogOp> = batch.iter().map(|r| &r.op).collect();
        let mark = ops.iter().map(|op| op.highest_index()).max().unwrap_or(0);
        let started = std::time::Instant::now();
        let written_bytes = wal.append(&ops, sync, mark).map_err(|e| e.to_string());
        let took = started.elapsed();
        if took > SLOW_WRITE {
            // As etcd's "slow fdatasync": the disk, not census, held every write this long.
            tracing::warn!(took_ms = took.as_millis() as u64, ops = ops.len(), sync, "slow raft log write");
        }
        if let Err(e) = &written_bytes {
            tracing::error!(error = %e, "raft log write failed");
        }
        let result = written_bytes.as_ref().map(|_| ()).map_err(String::clone);
        if result.is_ok() {
            ops.iter().for_each(|op| written.note(op));
        }
        drop(ops);
        for req in batch {
            match req.done {
                Done::Flushed(cb) => cb.log_io_completed(result.clone().map_err(std::io::Error::other)),
                Done::Waiter(tx) => {
                    let _ = tx.send(result.clone());
                }
                Done::Nothing => {}
            }
        }
        if let Ok(bytes) = written_bytes {
            shared.appended.fetch_add(bytes, Ordering::Relaxed);
            if let Err(e) = maintain_segments(&mut wal, &written, purged, segment_bytes) {
                tracing::error!(error = %e, "raft log segment upkeep failed");
            }
        }
    }
}

/// After a write: deletes the segments a purge in it made history (once that purge is durable)
/// and starts a new segment when the active one is full. Neither holds up appends for long: a
/// delete is an unlink, a new segment begins with a few small records.
fn maintain_segments(
    wal: &mut Wal,
    written: &Head,
    purged: Option<u64>,
    segment_bytes: u64,
) -> Result<(), WalError> {
    if let Some(upto) = purged
        && wal.segment_count() > 1
    {
        wal.sync()?;
        let dropped = wal.drop_through(upto)?;
        if dropped > 0 {
            tracing::debug!(dropped, purged_through = upto, "raft log segments deleted");
        }
    }
    if wal.active_bytes() > segment_bytes {
        wal.rotate(&written.ops(), 0)?;
    }
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let mem = lock_mem(&self.shared);
        Ok(mem.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = lock_mem(&self.shared).last_purged;
        Ok(LogState { last_purged_log_id, last_log_id: self.last_log_id() })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.submit_and_wait(LogOp::Vote(*vote))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(lock_mem(&self.shared).vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced: losing it only means re-learning the commit index from the leader.
        self.submit(LogOp::Committed(committed), false, Done::Nothing)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(lock_mem(&self.shared).committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        self.submit(LogOp::Append(entries), true, Done::Flushed(callback))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.submit_and_wait(LogOp::Truncate(log_id.index))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let durable = self.shared.snapshot_durable.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(mut durable) = durable {
            // A snapshot that never gets written (its install failed) stops the node with a
            // storage error instead of holding the Raft core forever.
            let reached = tokio::time::timeout(PURGE_WAIT, durable.wait_for(|d| *d >= log_id.index)).await;
            if !matches!(reached, Ok(Ok(_))) {
                return Err(storage_err(std::io::Error::other(format!(
                    "purge through {} waited {PURGE_WAIT:?} for a snapshot on disk that reaches it",
                    log_id.index
                ))));
            }
        }
        self.submit(LogOp::Purge(log_id), false, Done::Nothing)
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{blank_ent, log_id};

    use super::*;

    fn segment_files(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("raft-log")).map(|d| d.count()).unwrap_or(0)
    }

    fn reopen(dir: &Path) -> LogMem {
        let store = LogStore::open_with_segments_of(Some(dir), 512).expect("reopen");
        let mem = std::mem::take(&mut *lock_mem(&store.shared));
        store.close_and_join();
        mem
    }

    #[test]
    fn purged_segments_are_deleted_and_the_rest_replays_to_the_same_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LogStore::open_with_segments_of(Some(dir.path()), 512).expect("open");
        let vote = Vote::new(3, 1);
        store.submit_and_wait(LogOp::Vote(vote)).expect("vote");
        for index in 1..=200 {
            store.submit_and_wait(LogOp::Append(vec![blank_ent::<TypeConfig>(1, 1, index)])).expect("append");
        }
        let before = segment_files(dir.path());
        assert!(before > 5, "small segments rotate ({before} files)");
        store.submit(LogOp::Purge(log_id(1, 1, 150)), false, Done::Nothing).expect("purge");
        // The writer keeps segments after acknowledging a batch: once a second op is acknowledged,
        // the batch with the purge has been written and its history deleted.
        for _ in 0..2 {
            store.submit_and_wait(LogOp::Committed(Some(log_id(1, 1, 200)))).expect("commit");
        }
        let after = segment_files(dir.path());
        assert!(after < before / 2, "segments before the purge are gone ({before} → {after})");
        store.close_and_join();

        let mem = reopen(dir.path());
        assert_eq!(mem.vote, Some(vote));
        assert_eq!(mem.last_purged, Some(log_id(1, 1, 150)));
        assert_eq!(mem.committed, Some(log_id(1, 1, 200)));
        assert_eq!(mem.entries.keys().copied().collect::<Vec<_>>(), (151..=200).collect::<Vec<_>>());
    }

    #[test]
    fn a_log_kept_in_one_file_is_adopted_as_the_first_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The format before segments: the same records, in raft-log.wal beside the snapshot.
        {
            let old = dir.path().join("old");
            let (mut wal, _) = Wal::open::<LogOp>(&old, LogOp::highest_index).expect("wal");
            let ops = [
                LogOp::Vote(Vote::new(2, 1)),
                LogOp::Append((1..=3).map(|i| blank_ent::<TypeConfig>(1, 1, i)).collect()),
            ];
            wal.append(&ops, true, 3).expect("append");
            let segment = std::fs::read_dir(&old).expect("dir").next().expect("file").expect("entry").path();
            std::fs::rename(segment, dir.path().join(SINGLE_FILE)).expect("move");
        }
        // A crash after the segment directory was made and before the file was moved into it.
        std::fs::create_dir_all(dir.path().join("raft-log")).expect("empty segment dir");
        let mem = reopen(dir.path());
        assert_eq!(mem.vote, Some(Vote::new(2, 1)));
        assert_eq!(mem.entries.len(), 3);
        assert!(!dir.path().join(SINGLE_FILE).exists());
        // The adopted file, and the segment the reopened log writes to, which starts with a head.
        assert_eq!(segment_files(dir.path()), 2);
    }

    #[tokio::test]
    async fn a_purge_waits_until_the_snapshot_on_disk_covers_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = LogStore::open_with_segments_of(Some(dir.path()), 512).expect("open");
        let (durable, follow) = tokio::sync::watch::channel(10u64);
        store.purge_behind(follow);
        {
            let mut purge = std::pin::pin!(RaftLogStorage::purge(&mut store, log_id(1, 1, 50)));
            assert!(futures::poll!(purge.as_mut()).is_pending(), "the snapshot on disk reaches 10, not 50");
            durable.send_replace(50);
            purge.await.expect("the purge goes ahead once the snapshot reaches it");
        }
        assert_eq!(lock_mem(&store.shared).last_purged, Some(log_id(1, 1, 50)));
        store.close_and_join();
    }

    #[test]
    fn the_vote_survives_a_crash_between_a_new_segment_and_its_head() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vote = Vote::new(7, 2);
        let store = LogStore::open_with_segments_of(Some(dir.path()), 512).expect("open");
        store.submit_and_wait(LogOp::Vote(vote)).expect("vote");
        for index in 1..=50 {
            store.submit_and_wait(LogOp::Append(vec![blank_ent::<TypeConfig>(7, 2, index)])).expect("append");
        }
        store.close_and_join();
        // The crash: the next segment exists, empty, its head never written.
        let next = std::fs::read_dir(dir.path().join("raft-log")).expect("dir").count() as u64 + 100;
        std::fs::write(dir.path().join("raft-log").join(format!("{next:016x}.wal")), b"")
            .expect("empty segment");

        let store = LogStore::open_with_segments_of(Some(dir.path()), 512).expect("reopen");
        // Few enough entries that the segment the crash left empty stays the active one (later
        // segments would restate the vote in their own heads).
        for index in 51..=53 {
            store.submit_and_wait(LogOp::Append(vec![blank_ent::<TypeConfig>(7, 2, index)])).expect("append");
        }
        // Every segment from before the crash is history after this purge and is deleted; the
        // one the crash left empty, now holding 51 to 53, is the only one left.
        store.submit(LogOp::Purge(log_id(7, 2, 52)), false, Done::Nothing).expect("purge");
        for _ in 0..2 {
            store.submit_and_wait(LogOp::Committed(Some(log_id(7, 2, 53)))).expect("commit");
        }
        assert_eq!(segment_files(dir.path()), 1, "only the segment after the crash is left");
        store.close_and_join();
        let mem = reopen(dir.path());
        assert_eq!(mem.vote, Some(vote), "the vote is restated where the surviving segments begin");
        assert_eq!(mem.entries.keys().copied().collect::<Vec<_>>(), vec![53]);
    }
}
