//! Forming the cluster: servers greet the addresses they were given (`-retry-join`, `join`) and
//! everyone those know; with `-bootstrap-expect=N`, once N servers know each other, the one with
//! the lowest ID initializes Raft with all of them. A server that finds a formed cluster asks to
//! be added to it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::membership::MembershipChange;
use super::node::{ClusterError, ClusterNode, Remote};
use super::types::{NodeId, ServerNode};

/// What servers tell each other when they meet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub id: NodeId,
    pub node: ServerNode,
    pub initialized: bool,
    pub known: Vec<(NodeId, ServerNode)>,
}

/// The servers this one has heard of.
#[derive(Default)]
pub struct Discovery {
    known: Mutex<BTreeMap<NodeId, ServerNode>>,
}

const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

impl Discovery {
    pub fn learn(&self, hello: &Hello) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.insert(hello.id, hello.node.clone());
        for (id, node) in &hello.known {
            known.insert(*id, node.clone());
        }
    }

    pub fn known(&self) -> BTreeMap<NodeId, ServerNode> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn hello(&self, node: &ClusterNode) -> Hello {
        Hello {
            id: node.id,
            node: node.me.clone(),
            initialized: node.is_initialized(),
            known: self.known().into_iter().collect(),
        }
    }

    /// Greets one address; joins its cluster if it has one and this server has none, or adds it
    /// to this cluster in the opposite case.
    pub async fn greet(&self, node: &ClusterNode, addr: &str) -> Result<Hello, ClusterError> {
        let mine = self.hello(node);
        let theirs: Hello = node
            .transport
            .call(addr, "hello", &mine, HELLO_TIMEOUT)
            .await
            .map_err(|e| ClusterError::Forward(e.to_string()))?;
        self.learn(&theirs);
        if theirs.id == node.id {
            return Ok(theirs);
        }
        match (mine.initialized, theirs.initialized) {
            (false, true) => {
                let change = MembershipChange::Add { id: node.id, node: node.me.clone() };
                let answer: Remote<()> = node
                    .transport
                    .call(addr, "join", &change, Duration::from_secs(30))
                    .await
                    .map_err(|e| ClusterError::Forward(e.to_string()))?;
                answer.map_err(|e| ClusterError::Forward(e.to_string()))?;
            }
            (true, false) => {
                node.membership_via_leader(MembershipChange::Add {
                    id: theirs.id,
                    node: theirs.node.clone(),
                })
                .await?;
            }
            _ => {}
        }
        Ok(theirs)
    }
}

/// How this server forms or finds its cluster.
#[derive(Debug, Clone)]
pub struct BootstrapPlan {
    /// Initialize alone at once (`-dev`, `-bootstrap`, `-bootstrap-expect=1`).
    pub alone: bool,
    /// `-bootstrap-expect`; 0 = never initialize, only join.
    pub expect: usize,
    /// Raft addresses to greet (`-retry-join`, `-join`).
    pub join: Vec<String>,
}

/// Runs until this server is part of an initialized cluster.
pub async fn run(node: Arc<ClusterNode>, discovery: Arc<Discovery>, plan: BootstrapPlan) {
    discovery.learn(&Hello { id: node.id, node: node.me.clone(), initialized: false, known: Vec::new() });
    if plan.alone && !node.is_initialized() {
        let members = BTreeMap::from([(node.id, node.me.clone())]);
        if let Err(e) = node.raft.initialize(members).await {
            tracing::debug!(error = %e, "initialize alone");
        }
    }
    let mut round: u64 = 0;
    while !node.is_initialized() {
        let mut targets: Vec<String> = plan.join.clone();
        for (id, server) in discovery.known() {
            if id != node.id && !targets.contains(&server.raft_addr) {
                targets.push(server.raft_addr);
            }
        }
        for addr in &targets {
            if let Err(e) = discovery.greet(&node, addr).await
                && round.is_multiple_of(10)
            {
                tracing::info!(peer = %addr, error = %e, "waiting for peer");
            }
            if node.is_initialized() {
                break;
            }
        }
        let known = discovery.known();
        if plan.expect > 1
            && !node.is_initialized()
            && known.len() >= plan.expect
            && known.keys().next() == Some(&node.id)
        {
            tracing::info!(servers = known.len(), "bootstrap-expect reached; initializing the cluster");
            if let Err(e) = node.raft.initialize(known).await {
                tracing::warn!(error = %e, "initialize");
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tracing::info!(id = node.id, "member of an initialized cluster");
    node.readdress_self().await;
}
