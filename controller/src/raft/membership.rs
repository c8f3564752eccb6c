//! Membership changes: servers joining (as non-voters, promoted by autopilot once stable, as
//! Consul's autopilot does), re-addressed, promoted and removed, always by the leader; any
//! server can ask it (`membership_via_leader`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::ChangeMembers;

use super::node::{ClusterError, ClusterNode, FORWARD_TIMEOUT, LEADER_WAIT, Remote, RemoteError};
use super::types::{NodeId, ServerNode};

impl ClusterNode {
    /// Leader side: adds a server as a non-voter (autopilot promotes it once it is stable), or
    /// re-addresses a known one.
    pub async fn add_server_as_leader(&self, id: NodeId, node: ServerNode) -> Remote<()> {
        if !self.is_leader() {
            return Err(RemoteError::NotLeader);
        }
        let known = self.servers().into_iter().find(|(sid, _, _)| *sid == id);
        match &known {
            Some((_, existing, true)) if *existing == node => return Ok(()),
            // A voter back at another address (a rescheduled pod): re-address it in place, as
            // add_learner keeps the address a known node had.
            Some((_, _, true)) => {
                return self
                    .raft
                    .change_membership(ChangeMembers::SetNodes(BTreeMap::from([(id, node)])), false)
                    .await
                    .map(drop)
                    .map_err(RemoteError::failed);
            }
            _ => {}
        }
        if known.is_some() {
            return Ok(());
        }
        self.raft.add_learner(id, node, true).await.map(drop).map_err(RemoteError::failed)
    }

    /// Leader side: a non-voter becomes a voter (autopilot, once it is stable).
    pub async fn promote_as_leader(&self, id: NodeId) -> Remote<()> {
        if !self.is_leader() {
            return Err(RemoteError::NotLeader);
        }
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map(drop)
            .map_err(RemoteError::failed)
    }

    /// A server whose address changed (a pod rescheduled with a new IP, its data dir kept) asks
    /// any known server to re-address it; the leader among them does. Returns once the recorded
    /// address is current.
    pub async fn readdress_self(&self) {
        loop {
            let recorded = self.servers().into_iter().find(|(id, _, _)| *id == self.id).map(|(_, n, _)| n);
            match recorded {
                Some(n) if n != self.me => {}
                _ => return,
            }
            let change = MembershipChange::Add { id: self.id, node: self.me.clone() };
            let peers: Vec<ServerNode> =
                self.servers().into_iter().filter(|(id, _, _)| *id != self.id).map(|(_, n, _)| n).collect();
            for peer in peers {
                let answer = self
                    .transport
                    .call::<_, Remote<()>>(&peer.raft_addr, "membership", &change, FORWARD_TIMEOUT)
                    .await;
                if let Ok(Ok(())) = answer {
                    tracing::info!(raft = %self.me.raft_addr, "re-addressed this server in the Raft configuration");
                    break;
                }
            }
            let mut rx = self.raft.metrics();
            let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
        }
    }

    /// Leader side: removes a server from the configuration.
    pub async fn remove_server_as_leader(&self, id: NodeId) -> Remote<()> {
        if !self.is_leader() {
            return Err(RemoteError::NotLeader);
        }
        let voters: BTreeSet<NodeId> =
            self.servers().into_iter().filter(|(_, _, voter)| *voter).map(|(id, _, _)| id).collect();
        let change = if voters.contains(&id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft.change_membership(change, false).await.map(drop).map_err(RemoteError::failed)
    }

    /// Runs a membership change on the leader, wherever it is.
    pub async fn membership_via_leader(&self, change: MembershipChange) -> Result<(), ClusterError> {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let (leader_id, leader) = self.wait_for_leader(remaining).await.ok_or(ClusterError::NoLeader)?;
            let answer = if leader_id == self.id {
                change.run_here(self).await
            } else {
                match self
                    .transport
                    .call::<_, Remote<()>>(&leader.raft_addr, "membership", &change, FORWARD_TIMEOUT)
                    .await
                {
                    Ok(answer) => answer,
                    Err(e) => Err(RemoteError::failed(e)),
                }
            };
            match answer {
                Ok(()) => return Ok(()),
                Err(RemoteError::NotLeader) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(ClusterError::Forward(e.to_string())),
            }
        }
    }
}

/// A membership change that any server can ask the leader to make.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum MembershipChange {
    Add { id: NodeId, node: ServerNode },
    Remove { id: NodeId },
}

impl MembershipChange {
    pub async fn run_here(&self, node: &ClusterNode) -> Remote<()> {
        match self {
            MembershipChange::Add { id, node: server } => {
                node.add_server_as_leader(*id, server.clone()).await
            }
            MembershipChange::Remove { id } => node.remove_server_as_leader(*id).await,
        }
    }
}
