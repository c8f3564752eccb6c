//! Snapshots by volume as well as by count: openraft takes one every so many entries, but an
//! entry may hold one write or a batch of hundreds, so under heavy writes the log kept in memory
//! between snapshots grew to hundreds of megabytes. This task asks for a snapshot whenever the
//! log has taken more bytes since the last one it asked for than the larger of a floor and twice
//! the last snapshot's size: memory (and the WAL on disk) stays bounded whatever the batch
//! sizes, and a large catalog is not re-encoded more often than its log doubles it.

use std::time::Duration;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::Raft;

/// Ask for a snapshot after at least this many bytes of log.
pub const SNAPSHOT_BYTES_FLOOR: u64 = 16 << 20;
const POLL: Duration = Duration::from_millis(250);

/// Runs until the Raft node stops.
pub async fn run(raft: Raft, log: LogStore, state: StateMachine, floor: u64) {
    let mut since = log.appended_bytes();
    loop {
        tokio::time::sleep(POLL).await;
        if raft.metrics().borrow().running_state.is_err() {
            return;
        }
        let appended = log.appended_bytes();
        let threshold = floor.max(2 * state.snapshot_bytes());
        if appended.saturating_sub(since) < threshold {
            continue;
        }
        since = appended;
        tracing::debug!(log_bytes = appended, "snapshot by log volume");
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
    }
}
