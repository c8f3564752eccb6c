//! A server rebuilding a log that was damaged in the middle (log_salvage.rs): it follows the
//! leader as usual, but neither votes nor stands for election until its log reaches the index
//! the damaged one had reached; then it records that it is whole again.

use std::sync::Weak;

use openraft::raft::VoteResponse;

use super::node::ClusterNode;
use super::types::NodeId;

impl ClusterNode {
    /// True while this server rebuilds a damaged log.
    pub fn recovering(&self) -> bool {
        self.log_store.recovering_until().is_some()
    }

    /// The answer to a vote request while recovering: not granted, this server's vote unchanged.
    pub(super) fn refused_vote(&self) -> VoteResponse<NodeId> {
        let vote = self.raft.metrics().borrow().vote;
        VoteResponse::new(vote, self.log_store.last_log_id(), false)
    }
}

/// Waits until the rebuilt log reaches the damaged one's last index, then ends the recovery.
pub(super) async fn catch_up(node: Weak<ClusterNode>) {
    let (until, mut metrics) = match node.upgrade() {
        Some(node) => match node.log_store.recovering_until() {
            Some(until) => (until, node.raft.metrics()),
            None => return,
        },
        None => return,
    };
    tracing::warn!(until, "rebuilding the raft log from the leader; not voting until it reaches {until}");
    let reached = metrics
        .wait_for(|m| {
            m.last_log_index.is_some_and(|i| i >= until) || m.state == openraft::ServerState::Shutdown
        })
        .await
        .map(|m| m.state != openraft::ServerState::Shutdown);
    if !matches!(reached, Ok(true)) {
        return;
    }
    // openraft counts entries in its metrics before it has handed them all to the log store (a
    // reply it postpones can hold the rest back); the end of the recovery must be queued behind
    // them, so wait until the store itself holds the index.
    loop {
        let Some(node) = node.upgrade() else { return };
        if node.log_store.last_log_id().is_some_and(|l| l.index >= until) {
            break;
        }
        drop(node);
        let changed = tokio::time::timeout(std::time::Duration::from_millis(100), metrics.changed()).await;
        if matches!(changed, Ok(Err(_))) {
            return;
        }
    }
    let Some(node) = node.upgrade() else { return };
    // Queued behind every append before it, so it is on disk only once they are.
    match node.log_store.finish_recovery() {
        Ok(()) => tracing::info!(until, "raft log rebuilt; this server votes again"),
        Err(e) => tracing::error!(error = %e, "recording the end of the log's recovery failed"),
    }
}
