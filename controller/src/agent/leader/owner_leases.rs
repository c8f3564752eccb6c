//! Nodes that carry an agent's `serfHealth` check but that gossip does not know (registered
//! through the catalog API, or agents gossip has not heard from since this leader took over): the
//! leader turns every check of such a node critical a lease (`-owner-lease-ttl`) after it took
//! over (so its instances leave `?passing` answers and DNS, and the reaper removes those with
//! `DeregisterCriticalServiceAfter`), and removes the node after `-reconnect-timeout`, as Consul's
//! leader reaps catalog nodes that are not serf members. Agents are gossip members: gossip
//! decides their liveness (`members`).
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::leadership::Leadership;
use crate::catalog::{CheckStatus, Command, Table, WatchKey};
use crate::gossip::Gossip;
use crate::raft::ClusterNode;

/// The check every agent registers for its own node.
pub const AGENT_CHECK: &str = "serfHealth";
pub const ALIVE_OUTPUT: &str = "Agent alive and reachable";
pub const SILENT_OUTPUT: &str = "Agent not live or unreachable";

/// An agent's node as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    node: String,
    /// Checks of the node (its own and its services') that are not critical yet.
    live_checks: Vec<String>,
    last_heard: Instant,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Due {
    /// Nodes whose live checks must turn critical.
    silent: Vec<(String, Vec<String>)>,
    /// Nodes to remove from the catalog.
    gone: Vec<String>,
    next: Option<Instant>,
}

fn due(owners: &[Owner], now: Instant, ttl: Duration, reconnect: Duration) -> Due {
    let mut out = Due::default();
    let wake = |next: &mut Option<Instant>, at: Instant| *next = Some(next.map_or(at, |n| n.min(at)));
    for owner in owners {
        let quiet = now.saturating_duration_since(owner.last_heard);
        if quiet >= reconnect {
            out.gone.push(owner.node.clone());
            continue;
        }
        wake(&mut out.next, owner.last_heard + reconnect);
        if quiet < ttl {
            wake(&mut out.next, owner.last_heard + ttl);
        } else if !owner.live_checks.is_empty() {
            out.silent.push((owner.node.clone(), owner.live_checks.clone()));
        }
    }
    out
}

/// The leader's side.
pub async fn monitor(cluster: Arc<ClusterNode>, gossip: Arc<Gossip>, ttl: Duration, reconnect: Duration) {
    let mut leadership = Leadership::default();
    let mut granted_at = Instant::now();
    loop {
        if leadership.lead(&cluster).await {
            granted_at = Instant::now();
        }
        let mut sub = cluster.catalog.hub().subscribe(&WatchKey::Tables(vec![Table::Nodes, Table::Checks]));
        // Agents are gossip members: gossip decides their liveness (`members::reconcile`).
        let agents: std::collections::HashSet<String> =
            gossip.members().into_iter().map(|m| m.peer.name).collect();
        let owners: Vec<Owner> = cluster.catalog.read(|s| {
            s.nodes()
                .filter(|n| !agents.contains(&n.name) && s.check(&n.name, AGENT_CHECK).is_some())
                .map(|n| Owner {
                    node: n.name.clone(),
                    live_checks: s
                        .node_checks(&n.name)
                        .into_iter()
                        .filter(|c| c.status != CheckStatus::Critical)
                        .map(|c| c.id.clone())
                        .collect(),
                    last_heard: granted_at,
                })
                .collect()
        });
        let now = Instant::now();
        let due = due(&owners, now, ttl, reconnect);
        let mut failed = false;
        for (node, checks) in &due.silent {
            tracing::warn!(%node, "agent silent past its owner lease; marking its checks critical");
            let quiet = format!(
                "census: the agent of node {node} has not been heard from for {}s (owner lease)",
                ttl.as_secs_f32()
            );
            let updates = checks
                .iter()
                .map(|id| Command::UpdateCheck {
                    node: node.clone(),
                    check_id: id.clone(),
                    status: CheckStatus::Critical,
                    output: if id == AGENT_CHECK { SILENT_OUTPUT.into() } else { quiet.clone() },
                })
                .collect();
            failed |= cluster.write(Command::Batch(updates)).await.is_err();
        }
        for node in &due.gone {
            tracing::warn!(%node, "agent silent past -reconnect-timeout; removing its node");
            failed |= cluster.write(Command::DeregisterNode { node: node.clone() }).await.is_err();
        }
        if failed {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        leadership.wait(&cluster, &mut sub, due.next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(node: &str, checks: &[&str], heard: Instant) -> Owner {
        Owner {
            node: node.into(),
            live_checks: checks.iter().map(|c| c.to_string()).collect(),
            last_heard: heard,
        }
    }

    const TTL: Duration = Duration::from_secs(10);
    const RECONNECT: Duration = Duration::from_secs(100);

    #[test]
    fn an_agent_heard_within_its_lease_is_left_alone_until_the_lease_ends() {
        let t0 = Instant::now();
        let due = due(&[owner("a", &["serfHealth", "web"], t0)], t0 + Duration::from_secs(9), TTL, RECONNECT);
        assert!(due.silent.is_empty() && due.gone.is_empty());
        assert_eq!(due.next, Some(t0 + TTL));
    }

    #[test]
    fn a_silent_agent_gets_its_live_checks_marked_once_then_its_node_removed() {
        let t0 = Instant::now();
        let later = t0 + TTL;
        let marked = due(&[owner("a", &["serfHealth", "web"], t0)], later, TTL, RECONNECT);
        assert_eq!(marked.silent, vec![("a".to_string(), vec!["serfHealth".to_string(), "web".to_string()])]);
        assert_eq!(marked.next, Some(t0 + RECONNECT));
        let already = due(&[owner("a", &[], t0)], later, TTL, RECONNECT);
        assert!(already.silent.is_empty(), "nothing left to mark");
        let gone = due(&[owner("a", &[], t0)], t0 + RECONNECT, TTL, RECONNECT);
        assert_eq!(gone.gone, vec!["a".to_string()]);
    }
}
