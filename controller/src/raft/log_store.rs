//! The Raft log store: entries in memory for reads, made durable by a writer thread that commits
//! every pending append with one fdatasync (group commit).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, OptionalSend, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};

use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use super::wal::{Wal, WalError};

/// One durable change to the log, as written to the WAL.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum LogOp {
    Append(Vec<Entry>),
    /// Remove entries at and after this index.
    Truncate(u64),
    /// Remove entries up to and including this log id.
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
}

/// What the log holds now; also what a WAL rewrite writes.
#[derive(Debug, Default)]
struct LogMem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl LogMem {
    fn apply(&mut self, op: &LogOp) {
        match op {
            LogOp::Append(entries) => {
                for e in entries {
                    self.entries.insert(e.log_id.index, e.clone());
                }
            }
            LogOp::Truncate(since) => {
                self.entries.split_off(since);
            }
            LogOp::Purge(upto) => {
                self.entries = self.entries.split_off(&(upto.index + 1));
                self.last_purged = Some(*upto);
            }
            LogOp::Vote(v) => self.vote = Some(*v),
            LogOp::Committed(c) => self.committed = *c,
        }
    }

    /// The records that recreate this state from nothing.
    fn as_ops(&self) -> Vec<LogOp> {
        let mut ops = Vec::new();
        if let Some(v) = self.vote {
            ops.push(LogOp::Vote(v));
        }
        if let Some(p) = self.last_purged {
            ops.push(LogOp::Purge(p));
        }
        ops.push(LogOp::Committed(self.committed));
        if !self.entries.is_empty() {
            ops.push(LogOp::Append(self.entries.values().cloned().collect()));
        }
        ops
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

/// Rewrite the WAL when it has grown past this and twice what it held after the last rewrite.
const REWRITE_MIN_BYTES: u64 = 64 << 20;

impl LogStore {
    /// Opens the log under `dir` (`None`: memory only, for `-dev`).
    pub fn open(dir: Option<&Path>) -> Result<LogStore, WalError> {
        let mut mem = LogMem::default();
        let wal = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|source| WalError::Io { path: dir.to_path_buf(), source })?;
                let (wal, ops) = Wal::open::<LogOp>(&dir.join("raft-log.wal"))?;
                for op in &ops {
                    mem.apply(op);
                }
                wal
            }
            None => Wal::in_memory(),
        };
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared { mem: Mutex::new(mem), tx: Mutex::new(Some(tx)) });
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer_loop(wal, rx, writer_shared))
            .map_err(|source| WalError::Io { path: "raft-log-writer".into(), source })?;
        Ok(LogStore { shared })
    }

    /// Records `op` in memory and queues it for the writer.
    fn submit(&self, op: LogOp, sync: bool, done: Done) -> Result<(), StorageError> {
        let mut mem = lock_mem(&self.shared);
        mem.apply(&op);
        let tx = self.shared.tx.lock().unwrap_or_else(|p| p.into_inner());
        let sender = tx.as_ref().ok_or_else(|| storage_err(std::io::Error::other("log writer stopped")))?;
        sender
            .send(WriteReq { op, sync, done })
            .map_err(|_| storage_err(std::io::Error::other("log writer stopped")))
    }

    /// Queues `op` and waits until it is on disk.
    fn submit_and_wait(&self, op: LogOp) -> Result<(), StorageError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(op, true, Done::Waiter(tx))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(storage_err(std::io::Error::other(msg))),
            Err(_) => Err(storage_err(std::io::Error::other("log writer stopped"))),
        }
    }

    /// Stops the writer thread after it has written everything queued.
    pub fn close(&self) {
        self.shared.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn writer_loop(mut wal: Wal, rx: mpsc::Receiver<WriteReq>, shared: Arc<Shared>) {
    let mut size_after_rewrite = wal.size();
    let mut purged_since_rewrite = false;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let sync = batch.iter().any(|r| r.sync);
        purged_since_rewrite |= batch.iter().any(|r| matches!(r.op, LogOp::Purge(_)));
        let ops: Vec<&LogOp> = batch.iter().map(|r| &r.op).collect();
        let result = wal.append(&ops, sync).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "raft log write failed");
        }
        for req in batch {
            match req.done {
                Done::Flushed(cb) => cb.log_io_completed(result.clone().map_err(std::io::Error::other)),
                Done::Waiter(tx) => {
                    let _ = tx.send(result.clone());
                }
                Done::Nothing => {}
            }
        }
        if result.is_ok()
            && purged_since_rewrite
            && wal.size() > REWRITE_MIN_BYTES.max(2 * size_after_rewrite)
        {
            // Holding `mem` stops new ops. Ops still queued are already in memory, so the rewrite
            // holds them; writing them again afterwards replays a suffix of the history, which
            // leaves the same state.
            let mem = lock_mem(&shared);
            match wal.rewrite(&mem.as_ops()) {
                Ok(()) => {
                    size_after_rewrite = wal.size();
                    purged_since_rewrite = false;
                }
                Err(e) => tracing::error!(error = %e, "raft log rewrite failed"),
            }
        }
    }
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
        let mem = lock_mem(&self.shared);
        let last = mem.entries.values().next_back().map(|e| e.log_id).or(mem.last_purged);
        Ok(LogState { last_purged_log_id: mem.last_purged, last_log_id: last })
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
        self.submit(LogOp::Purge(log_id), false, Done::Nothing)
    }
}
