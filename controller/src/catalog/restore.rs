//! Snapshot restore as log entries: the archive arrives in chunks small enough for one Raft
//! append each, and `RestoreCommit` swaps the whole catalog at one index on every server.

use super::archive;
use super::command::CommandResult;
use super::state::{CatalogState, Changes, RestoreStaging};

impl CatalogState {
    pub(crate) fn restore_chunk(&mut self, id: &str, offset: u64, data: &[u8]) -> CommandResult {
        if offset == 0 {
            self.restore = Some(RestoreStaging { id: id.to_string(), archive: data.to_vec() });
            return CommandResult::Done;
        }
        match &mut self.restore {
            Some(staging) if staging.id == id && staging.archive.len() as u64 == offset => {
                staging.archive.extend_from_slice(data);
                CommandResult::Done
            }
            _ => CommandResult::Rejected(format!(
                "restore {id} was interrupted: another restore started or a part of it is missing"
            )),
        }
    }

    /// Replaces the catalog with the staged archive. Records keep the indexes they had; the
    /// index base moves so that every later index is above all of them and above every index
    /// this catalog handed out before.
    pub(crate) fn restore_commit(&mut self, id: &str, changes: &mut Changes) -> CommandResult {
        let staging = match self.restore.take() {
            Some(staging) if staging.id == id => staging,
            other => {
                self.restore = other;
                return CommandResult::Rejected(format!("restore {id} is not in progress"));
            }
        };
        let mut restored = match archive::read(&staging.archive) {
            Ok(archive) => archive.state,
            Err(e) => return CommandResult::Rejected(e.to_string()),
        };
        let log_index = self.last_index;
        let restored_top = restored.client_index();
        restored.index_base = self.index_base.max((restored_top + 1).saturating_sub(log_index));
        restored.last_index = log_index;
        restored.restore = None;
        *self = restored;
        changes.reset = true;
        CommandResult::Done
    }
}

#[cfg(test)]
mod tests {
    use super::super::command::Command;
    use super::*;

    fn kv_set(key: &str, value: &str) -> Command {
        Command::KvSet { key: key.into(), value: value.as_bytes().to_vec(), flags: 0, cas: None }
    }

    /// Uploads `archive` into `state` in chunks of 7 bytes starting at log index `at`.
    fn restore(state: &mut CatalogState, at: u64, archive: &[u8]) -> (CommandResult, Changes) {
        let mut index = at;
        for (n, data) in archive.chunks(7).enumerate() {
            let chunk =
                Command::RestoreChunk { id: "r1".into(), offset: (n * 7) as u64, data: data.to_vec() };
            assert_eq!(state.apply(index, &chunk).0, CommandResult::Done);
            index += 1;
        }
        state.apply(index, &Command::RestoreCommit { id: "r1".into() })
    }

    #[test]
    fn restore_brings_back_records_with_their_indexes_and_later_writes_index_above_them() {
        let mut source = CatalogState::default();
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            source.apply(100 + i as u64, &kv_set(key, key));
        }
        let bytes = archive::write(source.clone(), "t", source.client_index(), 1).expect("archive");

        // A fresh catalog whose log is far behind the snapshot's indexes.
        let mut target = CatalogState::default();
        target.apply(3, &kv_set("old", "x"));
        let (result, changes) = restore(&mut target, 4, &bytes);
        assert_eq!(result, CommandResult::Done);
        assert!(changes.reset, "every blocked reader must re-read");
        assert_eq!(target.kv, source.kv, "the KV store is the snapshot's, indexes included");
        assert!(!target.kv.contains_key("old"), "what the target held before is gone");
        let top = target.kv.values().map(|r| r.modify_index).max().unwrap_or(0);

        let next_log = target.last_index() + 1;
        target.apply(next_log, &kv_set("new", "y"));
        let new_index = target.kv.get("new").map(|r| r.modify_index).unwrap_or(0);
        assert!(new_index > top, "a write after the restore ({new_index}) must index above {top}");
    }

    #[test]
    fn restore_never_moves_later_indexes_below_what_the_target_handed_out() {
        let mut source = CatalogState::default();
        source.apply(2, &kv_set("a", "1"));
        let bytes = archive::write(source.clone(), "t", source.client_index(), 1).expect("archive");
        let mut target = CatalogState::default();
        target.apply(500, &kv_set("b", "2"));
        restore(&mut target, 501, &bytes);
        let next_log = target.last_index() + 1;
        target.apply(next_log, &kv_set("c", "3"));
        assert!(target.kv.get("c").map(|r| r.modify_index).unwrap_or(0) > 500);
    }

    #[test]
    fn a_missing_chunk_or_a_damaged_archive_changes_nothing() {
        let mut source = CatalogState::default();
        source.apply(2, &kv_set("a", "1"));
        let bytes = archive::write(source.clone(), "t", 2, 1).expect("archive");
        let mut target = CatalogState::default();
        target.apply(1, &kv_set("keep", "me"));
        let before = target.kv.clone();

        let first = Command::RestoreChunk { id: "r".into(), offset: 0, data: bytes[..10].to_vec() };
        target.apply(2, &first);
        let gap = Command::RestoreChunk { id: "r".into(), offset: 20, data: bytes[20..].to_vec() };
        assert!(matches!(target.apply(3, &gap).0, CommandResult::Rejected(_)));

        let mut damaged = bytes.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0xff;
        let whole = Command::RestoreChunk { id: "d".into(), offset: 0, data: damaged };
        target.apply(4, &whole);
        let (result, changes) = target.apply(5, &Command::RestoreCommit { id: "d".into() });
        assert!(matches!(result, CommandResult::Rejected(_)), "got {result:?}");
        assert!(!changes.reset);
        assert_eq!(target.kv, before);
    }

    #[test]
    fn archive_checks_its_sums() {
        let state = CatalogState::default();
        let bytes = archive::write(state, "t", 1, 1).expect("archive");
        let (meta, _) = archive::read_meta(&bytes).expect("a fresh archive reads back");
        assert_eq!((meta.index, meta.term, meta.version), (1, 1, 1));
        assert!(matches!(archive::read(b"not an archive"), Err(archive::ArchiveError::Container(_))));
    }
}
