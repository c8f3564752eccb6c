//! Anti-entropy: the client agent makes the catalog's record of its node match its own state, at
//! once after every local change and again every `interval`, which repairs anything changed or
//! deleted behind its back (as Consul's agent syncs its local state).

use std::sync::Arc;
use std::time::Duration;

use super::ClientCluster;
use super::servers::AgentWrite;
use crate::acl::Acl;
use crate::catalog::{
    CatalogState, CheckRegistration, Command, NodeSpec, Registration, ServiceSpec, Table, WatchKey,
};
use crate::cluster::Cluster;
use crate::gossip::{Gossip, Status};
use crate::raft::ClusterError;

/// The checks the servers keep for a node themselves, which its agent must not prune.
const SERVER_KEPT_CHECKS: [&str; 1] = [crate::agent::AGENT_CHECK];

/// Whose token a part of the sync carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// The node itself (with its node checks), and the pruning of what the agent no longer has:
    /// the agent token, else the default token.
    Agent,
    /// A service (with its checks): the token it was registered with, else the default token.
    Service(String),
}

/// The parts that make the catalog's record of `node` equal to the agent's state. Read under the
/// catalog's lock; the tokens are looked up after (`sign`).
pub fn sync_parts(state: &CatalogState, node: &NodeSpec) -> Vec<(Signer, Command)> {
    let checks_of = |service_id: &str| -> Vec<CheckRegistration> {
        state
            .node_checks(&node.name)
            .into_iter()
            .filter(|c| c.service_id == service_id)
            .map(|c| CheckRegistration {
                id: c.id.clone(),
                name: c.name.clone(),
                status: Some(c.status),
                notes: c.notes.clone(),
                output: c.output.clone(),
                service_id: c.service_id.clone(),
                spec: c.spec.clone(),
            })
            .collect()
    };
    let mut parts = vec![(
        Signer::Agent,
        Command::Register(Registration { node: node.clone(), checks: checks_of(""), ..Default::default() }),
    )];
    let services = state.node_services(&node.name);
    for s in &services {
        parts.push((
            Signer::Service(s.id.clone()),
            Command::Register(Registration {
                node: node.clone(),
                // The node's own part, before it in the same write, creates or updates it.
                skip_node_update: true,
                service: Some(ServiceSpec {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    kind: s.kind.clone(),
                    tags: s.tags.clone(),
                    address: s.address.clone(),
                    tagged_addresses: s.tagged_addresses.clone(),
                    meta: s.meta.clone(),
                    port: s.port,
                    socket_path: s.socket_path.clone(),
                    weights: s.weights,
                    enable_tag_override: s.enable_tag_override,
                    proxy: s.proxy.clone(),
                    connect_native: s.connect_native,
                    locality: s.locality.clone(),
                }),
                checks: checks_of(&s.id),
                replace_service_checks: true,
            }),
        ));
    }
    let mut keep_checks: Vec<String> = state.node_checks(&node.name).iter().map(|c| c.id.clone()).collect();
    keep_checks.extend(SERVER_KEPT_CHECKS.iter().map(|c| c.to_string()));
    let prune = Command::PruneNode {
        node: node.name.clone(),
        keep_services: services.iter().map(|s| s.id.clone()).collect(),
        keep_checks,
    };
    parts.push((Signer::Agent, prune));
    parts
}

/// The write that carries `parts`, each with its signer's token.
pub fn sign(parts: Vec<(Signer, Command)>, acl: &Acl) -> AgentWrite {
    let agent = acl.agent_token();
    let parts = parts
        .into_iter()
        .map(|(signer, cmd)| {
            let token = match signer {
                Signer::Agent => agent.clone(),
                Signer::Service(id) => match acl.registrations.of(&id) {
                    none if none.is_empty() => acl.default_token(),
                    token => token,
                },
            };
            (token, cmd)
        })
        .collect();
    AgentWrite { parts }
}

/// Logs the parts the servers refused, in Consul's words, each once while it stays refused
/// (`logged` holds the refusals logged and still standing).
fn log_refusals(signers: &[Signer], refused: &[(usize, String)], logged: &mut Vec<(Signer, String)>) {
    let now: Vec<(Signer, String)> = refused
        .iter()
        .map(|(position, why)| (signers.get(*position).cloned().unwrap_or(Signer::Agent), why.clone()))
        .collect();
    logged.retain(|seen| now.contains(seen));
    for seen in now {
        if logged.contains(&seen) {
            continue;
        }
        let why = &seen.1;
        match &seen.0 {
            Signer::Service(id) => {
                tracing::warn!(target: "agent", service = %id, error = %why, "Service registration blocked by ACLs");
            }
            Signer::Agent => {
                tracing::warn!(target: "agent", error = %why, "Node info update blocked by ACLs")
            }
        }
        logged.push(seen);
    }
}

/// What, in gossip, calls for a sync at once: the leader asked for one (this agent came back
/// after being marked failed, and its checks were marked critical meanwhile), more alive servers
/// than before (a partition healed), or this agent rejoined under a renewed identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GossipMark {
    resyncs: u64,
    alive_servers: usize,
    own_bump: u16,
}

impl GossipMark {
    fn of(gossip: &Gossip) -> GossipMark {
        let members = gossip.members();
        GossipMark {
            resyncs: gossip.resyncs(),
            alive_servers: members.iter().filter(|m| m.status == Status::Alive && m.peer.is_server()).count(),
            own_bump: members.iter().find(|m| m.peer.name == gossip.name()).map_or(0, |m| m.peer.bump),
        }
    }

    fn calls_for_sync(self, now: GossipMark) -> bool {
        now.resyncs != self.resyncs || now.alive_servers > self.alive_servers || now.own_bump != self.own_bump
    }
}

/// Runs until the agent stops.
pub async fn run(
    cluster: Arc<ClientCluster>,
    gossip: Arc<Gossip>,
    node: NodeSpec,
    interval: Duration,
    acl: Arc<Acl>,
) {
    let mut synced_once = false;
    let mut logged = Vec::new();
    loop {
        let catalog = cluster.catalog().clone();
        let mut sub = catalog.hub().subscribe(&WatchKey::Tables(vec![Table::Services, Table::Checks]));
        let mut mark = GossipMark::of(&gossip);
        let parts = catalog.read(|s| sync_parts(s, &node));
        let signers: Vec<Signer> = parts.iter().map(|(signer, _)| signer.clone()).collect();
        match cluster.servers.write(&sign(parts, &acl)).await {
            // A refused part (a token that lacks what it needs) is retried on the next change
            // or interval, not at once; the others were written.
            Ok(answer) if !answer.refused.is_empty() => log_refusals(&signers, &answer.refused, &mut logged),
            Ok(_) => {
                logged.clear();
                if !synced_once {
                    tracing::info!(target: "agent", "Synced node info");
                    synced_once = true;
                }
            }
            Err(ClusterError::PermissionDenied(why)) => {
                tracing::warn!(target: "agent", error = %why, "anti-entropy sync refused");
            }
            Err(e) => {
                tracing::warn!(target: "agent", error = %e, "anti-entropy sync failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let mut changes = gossip.changes();
        let next_full = tokio::time::sleep(interval);
        tokio::pin!(next_full);
        loop {
            tokio::select! {
                _ = sub.changed() => break,
                _ = &mut next_full => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = GossipMark::of(&gossip);
                    if mark.calls_for_sync(now) {
                        tracing::debug!(target: "agent", "gossip changed: syncing now");
                        break;
                    }
                    mark = now;
                }
            }
        }
    }
}
