//! Snapshots by volume as well as by count: openraft takes one every so many entries, but an
//! entry may hold one write or a batch of hundreds, so under heavy writes the log kept in memory
//! between snapshots grew to hundreds of megabytes. This task asks for a snapshot whenever the
//! log has taken a set number of bytes since the last one it asked for, which bounds that memory
//! (and the WAL on disk) whatever the batch sizes.

use std::time::Duration;

use super::log_store::LogStore;
use super::types::Raft;

/// Ask for a snapshot after this many bytes of log.
pub const SNAPSHOT_BYTES: u64 = 64 << 20;
const POLL: Duration = Duration::from_millis(250);

/// Runs until the Raft node stops.
pub async fn run(raft: Raft, log: LogStore, threshold: u64) {
    let mut since = log.appended_bytes();
    loop {
        tokio::time::sleep(POLL).await;
        if raft.metrics().borrow().running_state.is_err() {
            return;
        }
        let appended = log.appended_bytes();
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
