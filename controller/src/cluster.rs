//! The port through which the HTTP handlers, DNS and the check runner reach the cluster. A
//! server implements it with Raft (`raft::ClusterNode`); a client agent with its own services and
//! checks, synced to the servers by anti-entropy (`client_agent::ClientCluster`).

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::catalog::{Catalog, Command, CommandResult};
use crate::raft::{ClusterError, ClusterNode, ReadMode};

pub trait Cluster: Send + Sync {
    /// What this agent reads: the replicated catalog on a server; on a client agent, its own
    /// node's services and checks (everything else is asked of a server).
    fn catalog(&self) -> &Arc<Catalog>;

    /// Applies `cmd` and returns its index and result: through Raft on a server; to the agent's
    /// own state (and then to the catalog by anti-entropy) on a client agent.
    fn write(&self, cmd: Command) -> BoxFuture<'_, Result<(u64, CommandResult), ClusterError>>;

    /// Makes a read of `catalog()` safe for `mode`.
    fn read_barrier(&self, mode: ReadMode) -> BoxFuture<'_, Result<(), ClusterError>>;

    /// Whether a leader is known (`X-Consul-KnownLeader`).
    fn known_leader(&self) -> bool;

    /// Milliseconds since the leader was last heard from (`X-Consul-LastContact`).
    fn last_contact_ms(&self) -> u64;
}

impl Cluster for ClusterNode {
    fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    fn write(&self, cmd: Command) -> BoxFuture<'_, Result<(u64, CommandResult), ClusterError>> {
        Box::pin(ClusterNode::write(self, cmd))
    }

    fn read_barrier(&self, mode: ReadMode) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(ClusterNode::read_barrier(self, mode))
    }

    fn known_leader(&self) -> bool {
        ClusterNode::known_leader(self)
    }

    fn last_contact_ms(&self) -> u64 {
        ClusterNode::last_contact_ms(self)
    }
}
