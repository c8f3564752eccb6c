//! The Raft state machine: the catalog in memory, snapshotted to disk.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};

use super::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::catalog::{Catalog, CatalogState, CommandResult, LogItem};

/// What was applied last; kept beside the catalog under one lock so snapshots are consistent.
#[derive(Debug, Clone, Default)]
struct Applied {
    log_id: Option<LogId>,
    membership: StoredMembership,
}

/// A snapshot as stored on disk.
#[derive(Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// [`SnapshotFile`] borrowed for writing (the same encoding: a slice and a Vec are both a
/// length-prefixed sequence), so the data is not copied to be saved.
#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    meta: &'a SnapshotMeta,
    data: &'a [u8],
}

struct Inner {
    catalog: Arc<Catalog>,
    applied: Mutex<Applied>,
    dir: Option<PathBuf>,
    current: Mutex<Option<(SnapshotMeta, Vec<u8>)>>,
    /// Held while a snapshot is written: a build and an install may run at once (openraft runs
    /// builds in a task of their own) and share the file.
    persisting: Mutex<()>,
    /// The last log index the snapshot on disk covers: the log store purges no further.
    durable: tokio::sync::watch::Sender<u64>,
}

#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageError::IO { source: StorageIOError::write_state_machine(AnyError::new(&e)) }
}

fn snap_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageError::IO { source: StorageIOError::write_snapshot(None, AnyError::new(&e)) }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StateMachine {
    /// Loads the last snapshot under `dir`, if any, into `catalog`.
    pub fn open(catalog: Arc<Catalog>, dir: Option<&Path>) -> Result<StateMachine, StorageError> {
        let inner = Inner {
            catalog,
            applied: Mutex::new(Applied::default()),
            dir: dir.map(Path::to_path_buf),
            current: Mutex::new(None),
            persisting: Mutex::new(()),
            durable: tokio::sync::watch::channel(0).0,
        };
        if let Some(path) = dir.map(|d| d.join("snapshot.bin"))
            && path.exists()
        {
            let bytes = std::fs::read(&path).map_err(snap_err)?;
            let file: SnapshotFile = bincode::deserialize(&bytes).map_err(snap_err)?;
            let state = CatalogState::from_bytes(&file.data).map_err(snap_err)?;
            inner.catalog.replace(state);
            *lock(&inner.applied) =
                Applied { log_id: file.meta.last_log_id, membership: file.meta.last_membership.clone() };
            inner.durable.send_replace(file.meta.last_log_id.map_or(0, |l| l.index));
            *lock(&inner.current) = Some((file.meta, file.data));
        }
        Ok(StateMachine { inner: Arc::new(inner) })
    }

    /// Follows the last log index the snapshot on disk covers.
    pub fn durable_snapshot(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.durable.subscribe()
    }

    /// The size of the current snapshot's data.
    pub fn snapshot_bytes(&self) -> u64 {
        lock(&self.inner.current).as_ref().map_or(0, |(_, data)| data.len() as u64)
    }

    /// Writes the snapshot durably (aside, fsync, rename, fsync the directory) and keeps it as
    /// the current one. Blocking: callers run it off the async workers.
    fn persist(&self, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), StorageError> {
        let _one_at_a_time = lock(&self.inner.persisting);
        // A build that copied the catalog before an install of a later snapshot finished must not
        // replace it: the log before the installed snapshot may already be purged.
        if lock(&self.inner.current)
            .as_ref()
            .is_some_and(|(current, _)| current.last_log_id > meta.last_log_id)
        {
            return Ok(());
        }
        if let Some(dir) = &self.inner.dir {
            let tmp = dir.join("snapshot.bin.tmp");
            let file = std::fs::File::create(&tmp).map_err(snap_err)?;
            let mut out = std::io::BufWriter::new(file);
            bincode::serialize_into(&mut out, &SnapshotFileRef { meta, data: &data }).map_err(snap_err)?;
            let file = out.into_inner().map_err(|e| snap_err(e.into_error()))?;
            file.sync_all().map_err(snap_err)?;
            std::fs::rename(&tmp, dir.join("snapshot.bin")).map_err(snap_err)?;
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(snap_err)?;
        }
        *lock(&self.inner.current) = Some((meta.clone(), data));
        self.inner.durable.send_replace(meta.last_log_id.map_or(0, |l| l.index));
        Ok(())
    }

    /// Encodes a copy of the catalog taken at `applied` and persists it (blocking).
    fn encode_and_persist(
        &self,
        applied: Applied,
        state: CatalogState,
    ) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = state.to_bytes().map_err(sm_err)?;
        drop(state);
        let snapshot_id = match applied.log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, data.len()),
            None => format!("empty-{}", data.len()),
        };
        let meta =
            SnapshotMeta { last_log_id: applied.log_id, last_membership: applied.membership, snapshot_id };
        self.persist(&meta, data.clone())?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

/// Runs blocking snapshot work (encoding, fsync) on tokio's blocking pool, so the Raft core and
/// request handlers keep their worker threads meanwhile.
async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work).await.map_err(sm_err)?
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // The copy is taken under the applied lock so it matches the log id it is labelled with;
        // encoding and writing it happen after, with applies running again.
        let started = std::time::Instant::now();
        let (applied, state) = {
            let applied = lock(&self.inner.applied);
            (applied.clone(), self.inner.catalog.read(CatalogState::clone))
        };
        let copied = started.elapsed();
        let this = self.clone();
        let snapshot = off_workers(move || this.encode_and_persist(applied, state)).await?;
        tracing::info!(
            index = snapshot.meta.last_log_id.map(|l| l.index),
            bytes = snapshot.snapshot.get_ref().len(),
            copy_ms = copied.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = lock(&self.inner.applied);
        Ok((applied.log_id, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut applied = lock(&self.inner.applied);
        let items = entries.iter().map(|e| LogItem {
            index: e.log_id.index,
            command: match &e.payload {
                EntryPayload::Normal(cmd) => Some(cmd),
                _ => None,
            },
        });
        let mut results = self.inner.catalog.apply_batch(items).into_iter();
        let mut out = Vec::with_capacity(entries.len());
        for entry in &entries {
            applied.log_id = Some(entry.log_id);
            match &entry.payload {
                EntryPayload::Normal(_) => out.push(results.next().unwrap_or(CommandResult::Done)),
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    out.push(CommandResult::Done);
                }
                EntryPayload::Blank => out.push(CommandResult::Done),
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let (this, meta) = (self.clone(), meta.clone());
        off_workers(move || {
            let state = CatalogState::from_bytes(&data).map_err(snap_err)?;
            {
                let mut applied = lock(&this.inner.applied);
                this.inner.catalog.replace(state);
                *applied = Applied { log_id: meta.last_log_id, membership: meta.last_membership.clone() };
            }
            this.persist(&meta, data)
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(lock(&self.inner.current).as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{blank_ent, log_id};

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_built_snapshot_is_read_back_on_open_and_an_older_one_does_not_replace_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sm = StateMachine::open(Arc::new(Catalog::new()), Some(dir.path())).expect("open");
        sm.apply((1..=5).map(|i| blank_ent::<TypeConfig>(1, 1, i))).await.expect("apply");
        let built = sm.build_snapshot().await.expect("build");
        assert_eq!(built.meta.last_log_id, Some(log_id(1, 1, 5)));
        assert_eq!(*sm.durable_snapshot().borrow(), 5);

        // A build that copied the catalog earlier (at 3) and finishes late changes nothing.
        let older = SnapshotMeta {
            last_log_id: Some(log_id(1, 1, 3)),
            last_membership: StoredMembership::default(),
            snapshot_id: "older".into(),
        };
        sm.persist(&older, Vec::new()).expect("persist older");

        let mut reopened = StateMachine::open(Arc::new(Catalog::new()), Some(dir.path())).expect("reopen");
        let current = reopened.get_current_snapshot().await.expect("current").expect("a snapshot");
        assert_eq!(current.meta, built.meta);
        assert_eq!(current.snapshot.into_inner(), built.snapshot.into_inner());
        assert_eq!(*reopened.durable_snapshot().borrow(), 5);
        assert_eq!(reopened.applied_state().await.expect("applied").0, Some(log_id(1, 1, 5)));
    }
}
