//! A Raft log damaged in the middle: bit rot in a segment that later ones follow (a torn tail is
//! only cut: see wal.rs). Those entries were acknowledged, and cutting the log there would drop
//! every later one silently. Instead the damaged segments are set aside (kept for inspection,
//! never read again) and the server starts over with an empty log that keeps two things:
//!
//! - its **vote**, so that it never votes twice in a term (the newest vote is in the newest
//!   segment, which is intact: the damage is in an older one);
//! - **how far its log reached**, from the `Reached` record every segment's head carries. Entries
//!   up to there may have counted towards a commit, so until its log reaches that index again
//!   (from the leader: entries or a snapshot) the server neither votes nor stands for election.
//!   Otherwise a candidate that lacks a committed entry could win with the vote of the very server
//!   that lost it, and the entry would be gone from the cluster (Raft's "amnesia" problem).
//!
//! Meanwhile the server follows the leader as any other: it takes appends (which count towards
//! commits, for entries it really holds on disk) and answers reads. A log from before `Reached`
//! existed has no such bound: it is refused as before, and its server must be restored by hand.
//!
//! The switch is crash-safe: the new log is written under a temporary name, then the damaged one
//! is renamed aside and the new one into place; a start that finds the temporary directory
//! finishes (or discards) what was interrupted.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::log_store::LogOp;
use super::wal::{self, Wal, WalError, io_err, sync_dir};

/// The new log while it is being written, beside the segment directory.
const REBUILT: &str = "raft-log.rebuilt.tmp";
/// Where damaged segments are set aside: this, then the time in seconds since the epoch.
pub const SET_ASIDE_PREFIX: &str = "raft-log.corrupt-";

/// Completes a switch a crash interrupted: the new log is moved into place when the damaged one
/// was already set aside, and discarded when it was not (the damage is found again).
pub(super) fn finish_interrupted(dir: &Path, segments: &Path) -> Result<(), WalError> {
    let rebuilt = dir.join(REBUILT);
    if !rebuilt.exists() {
        return Ok(());
    }
    if segments.exists() {
        std::fs::remove_dir_all(&rebuilt).map_err(io_err(&rebuilt))?;
    } else {
        std::fs::rename(&rebuilt, segments).map_err(io_err(&rebuilt))?;
    }
    sync_dir(dir)
}

/// What the damaged log says about itself.
#[derive(Debug, PartialEq, Eq)]
struct Salvaged {
    vote: Option<super::types::Vote>,
    /// The highest entry index the log ever held (an upper bound).
    reached: u64,
}

/// Reads what is left of a log that `damaged` (at `offset`) made unreadable: `None` when nothing
/// bounds how far the damaged part reached (a log from before `Reached` records).
fn salvage(segments: &Path) -> Result<Option<Salvaged>, WalError> {
    let prefixes = wal::read_intact::<LogOp>(segments)?;
    // The newest segment's damage is a torn tail (never acknowledged); every other damaged segment
    // must be followed by a head that says how far the segments before it reached.
    let older = prefixes.len().saturating_sub(1);
    let Some(last_damaged) = prefixes[..older].iter().rposition(|p| p.damaged) else {
        return Ok(None);
    };
    let bounded = prefixes[last_damaged + 1..]
        .iter()
        .flat_map(|p| &p.records)
        .any(|op| matches!(op, LogOp::Reached(_)));
    if !bounded {
        return Ok(None);
    }
    let records = || prefixes.iter().flat_map(|p| &p.records);
    // Not committed: a server that led when its log was damaged must not come back as leader
    // with the log it has now (openraft restores a committed vote for itself as leadership).
    let vote = records().rev().find_map(|op| match op {
        LogOp::Vote(v) => Some(super::types::Vote { committed: false, ..*v }),
        _ => None,
    });
    let reached = records()
        .map(|op| match op {
            LogOp::Reached(r) => *r,
            LogOp::Recovering(until) => until.unwrap_or(0),
            other => other.highest_index(),
        })
        .max()
        .unwrap_or(0);
    Ok(Some(Salvaged { vote, reached }))
}

/// Sets the damaged log in `segments` aside and puts a new one in its place that holds the
/// salvaged vote and the index to recover to. Fails with the original corruption error when the
/// log cannot be salvaged safely.
pub(super) fn set_aside(dir: &Path, segments: &Path, damaged: PathBuf, offset: u64) -> Result<(), WalError> {
    let Some(Salvaged { vote, reached }) = salvage(segments)? else {
        return Err(WalError::Corrupt { path: damaged, offset });
    };
    let rebuilt = dir.join(REBUILT);
    if rebuilt.exists() {
        std::fs::remove_dir_all(&rebuilt).map_err(io_err(&rebuilt))?;
    }
    {
        let (mut wal, _) = Wal::open::<LogOp>(&rebuilt, LogOp::highest_index)?;
        let mut head: Vec<LogOp> = vote.map(LogOp::Vote).into_iter().collect();
        head.extend([LogOp::Reached(reached), LogOp::Recovering(Some(reached))]);
        wal.append(&head, true, 0)?;
    }
    sync_dir(dir)?;
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut aside = dir.join(format!("{SET_ASIDE_PREFIX}{secs}"));
    for n in 2.. {
        if !aside.exists() {
            break;
        }
        aside = dir.join(format!("{SET_ASIDE_PREFIX}{secs}-{n}"));
    }
    std::fs::rename(segments, &aside).map_err(io_err(segments))?;
    std::fs::rename(&rebuilt, segments).map_err(io_err(&rebuilt))?;
    sync_dir(dir)?;
    tracing::error!(
        damaged = %damaged.display(),
        offset,
        set_aside = %aside.display(),
        recover_to = reached,
        "the raft log is corrupt in the middle; it was set aside and this server rebuilds its log \
         from the leader, without voting until it reaches index {reached} again"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use openraft::testing::blank_ent;

    use super::super::log_store::{LogStore, SEGMENTS};
    use super::super::types::{TypeConfig, Vote};
    use super::*;

    /// A log of two segments, the first holding entries 1..=20, as a restart leaves it.
    fn two_segments(dir: &Path, vote: Vote) {
        assert_eq!(vote.leader_id, Vote::new(4, 2).leader_id, "the entries are written in term 4 by node 2");
        let store = LogStore::open(Some(dir)).expect("open");
        store.submit_and_wait(LogOp::Vote(vote)).expect("vote");
        for index in 1..=20 {
            store.submit_and_wait(LogOp::Append(vec![blank_ent::<TypeConfig>(4, 2, index)])).expect("append");
        }
        store.close_and_join();
        // A restart starts a new segment with a head.
        LogStore::open(Some(dir)).expect("reopen").close_and_join();
    }

    fn first_segment(dir: &Path) -> PathBuf {
        wal::segment_path(&dir.join(SEGMENTS), 1)
    }

    fn damage(path: &Path, at: usize) {
        let mut bytes = std::fs::read(path).expect("read");
        bytes[at] ^= 0xff;
        std::fs::write(path, bytes).expect("write");
    }

    #[test]
    fn a_log_damaged_in_the_middle_is_set_aside_keeping_the_vote_and_the_index_to_recover_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The vote of a leader (committed), as a leader's log holds it.
        let vote = Vote::new_committed(4, 2);
        let uncommitted = Vote::new(4, 2);
        two_segments(dir.path(), vote);
        let first = first_segment(dir.path());
        let len = std::fs::metadata(&first).expect("meta").len() as usize;
        damage(&first, len / 2);

        let store = LogStore::open(Some(dir.path())).expect("a damaged log opens");
        assert_eq!(store.recovering_until(), Some(20), "the damaged log reached entry 20");
        assert_eq!(store.last_log_id(), None, "nothing of the damaged log is used");
        assert_eq!(store.vote_now(), Some(uncommitted), "kept, but no longer as a leader's");
        store.close_and_join();
        let aside: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(SET_ASIDE_PREFIX))
            .collect();
        assert_eq!(aside.len(), 1, "the damaged segments are kept aside: {aside:?}");

        // Still recovering after a restart; done only once recorded.
        let store = LogStore::open(Some(dir.path())).expect("reopen");
        assert_eq!(store.recovering_until(), Some(20));
        assert_eq!(store.vote_now(), Some(uncommitted));
        store.finish_recovery().expect("finish");
        store.close_and_join();
        let store = LogStore::open(Some(dir.path())).expect("reopen");
        assert_eq!(store.recovering_until(), None);
        assert_eq!(store.vote_now(), Some(uncommitted));
        store.close_and_join();
    }

    #[test]
    fn a_log_without_a_bound_on_the_damaged_part_is_still_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segments = dir.path().join(SEGMENTS);
        {
            // As a log written before `Reached` records: heads without one.
            let (mut wal, _) = Wal::open::<LogOp>(&segments, LogOp::highest_index).expect("wal");
            let entries = (1..=5).map(|i| blank_ent::<TypeConfig>(1, 1, i)).collect();
            wal.append(&[LogOp::Vote(Vote::new(1, 1)), LogOp::Append(entries)], true, 5).expect("append");
            wal.rotate(&[LogOp::Vote(Vote::new(1, 1)), LogOp::Committed(None)], 0).expect("rotate");
        }
        damage(&first_segment(dir.path()), 20);
        match LogStore::open(Some(dir.path())) {
            Err(WalError::Corrupt { path, .. }) => assert_eq!(path, first_segment(dir.path())),
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok(_) => panic!("a log with no bound on its damaged part was opened"),
        }
    }

    #[test]
    fn every_damaged_segment_needs_a_bound_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segments = dir.path().join(SEGMENTS);
        let entries = |from: u64, to: u64| {
            LogOp::Append((from..=to).map(|i| blank_ent::<TypeConfig>(1, 1, i)).collect())
        };
        {
            let (mut wal, _) = Wal::open::<LogOp>(&segments, LogOp::highest_index).expect("wal");
            wal.append(&[LogOp::Vote(Vote::new(1, 1)), entries(1, 5)], true, 5).expect("append");
            wal.rotate(&[LogOp::Vote(Vote::new(1, 1)), LogOp::Reached(5)], 0).expect("rotate");
            wal.append(&[entries(6, 10)], true, 10).expect("append");
            // A head without a bound: nothing says how far the second segment went.
            wal.rotate(&[LogOp::Vote(Vote::new(1, 1))], 0).expect("rotate");
        }
        let second = wal::segment_path(&segments, 2);
        let len = std::fs::metadata(&second).expect("meta").len() as usize;
        damage(&first_segment(dir.path()), 20);
        damage(&second, len - 4);
        match LogStore::open(Some(dir.path())) {
            Err(WalError::Corrupt { .. }) => {}
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok(store) => panic!(
                "salvaged with a bound of {:?} though entries up to 10 were lost",
                store.recovering_until()
            ),
        }
    }

    #[test]
    fn an_interrupted_switch_is_finished_or_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segments = dir.path().join(SEGMENTS);
        let rebuilt = dir.path().join(REBUILT);
        // Crashed before the damaged log was set aside: the new one is discarded.
        std::fs::create_dir_all(&segments).expect("segments");
        std::fs::create_dir_all(&rebuilt).expect("rebuilt");
        finish_interrupted(dir.path(), &segments).expect("finish");
        assert!(segments.exists() && !rebuilt.exists());
        // Crashed after: the new one moves into place.
        std::fs::remove_dir_all(&segments).expect("remove");
        std::fs::create_dir_all(&rebuilt).expect("rebuilt");
        std::fs::write(rebuilt.join("marker"), b"x").expect("marker");
        finish_interrupted(dir.path(), &segments).expect("finish");
        assert!(segments.join("marker").exists() && !rebuilt.exists());
    }
}
