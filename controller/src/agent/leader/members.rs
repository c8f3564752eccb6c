//! The leader keeps the catalog in step with gossip, as Consul's leader reconciles serf members:
//! an alive agent's `serfHealth` passes; a failed one's turns critical ("Agent not live or
//! unreachable"), with its other checks (nobody runs them any more), and its services stay; a left one's node leaves the catalog; a failed one is
//! reaped after `-reconnect-timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::leadership::Leadership;
use super::owner_leases::{AGENT_CHECK, ALIVE_OUTPUT, SILENT_OUTPUT};
use crate::catalog::{
    CatalogState, CheckRegistration, CheckSpec, CheckStatus, Command, NodeSpec, Registration,
};
use crate::catalog::{Table, WatchKey};
use crate::gossip::Item;
use crate::gossip::{Gossip, MemberState, Status};
use crate::raft::ClusterNode;

/// An agent's `serfHealth` check while gossip finds it alive.
pub fn alive_check() -> CheckRegistration {
    CheckRegistration {
        id: AGENT_CHECK.into(),
        name: "Serf Health Status".into(),
        status: Some(CheckStatus::Passing),
        notes: String::new(),
        output: ALIVE_OUTPUT.into(),
        service_id: String::new(),
        spec: CheckSpec::default(),
    }
}

/// What the catalog needs so that it says what gossip says.
fn plan(s: &CatalogState, members: &[MemberState], now: Instant, reconnect: Duration) -> Vec<Command> {
    let mut out = Vec::new();
    for m in members {
        let name = &m.peer.name;
        // A node appears in the catalog when its agent registers it; the leader keeps its
        // serfHealth, marks its checks when it fails, and removes it when it is gone.
        let Some(_) = s.node(name) else { continue };
        let check = s.check(name, AGENT_CHECK);
        match m.status {
            Status::Alive if check.is_none_or(|c| c.status != CheckStatus::Passing) => {
                out.push(Command::Register(Registration {
                    node: NodeSpec { name: name.clone(), ..Default::default() },
                    skip_node_update: true,
                    checks: vec![alive_check()],
                    ..Default::default()
                }));
            }
            Status::Failed if now.saturating_duration_since(m.since) >= reconnect => {
                out.push(Command::DeregisterNode { node: name.clone() });
            }
            // Every check of the node turns critical: no one runs them any more, so its instances
            // leave `?passing` answers and DNS, and those with DeregisterCriticalServiceAfter are
            // reaped; the agent puts its own statuses back when it returns.
            Status::Failed => {
                for c in s.node_checks(name).into_iter().filter(|c| c.status != CheckStatus::Critical) {
                    let output = if c.id == AGENT_CHECK {
                        SILENT_OUTPUT.to_string()
                    } else {
                        format!("census: the agent of node {name} failed (gossip); this check is not run")
                    };
                    out.push(Command::UpdateCheck {
                        node: name.clone(),
                        check_id: c.id.clone(),
                        status: CheckStatus::Critical,
                        output,
                    });
                }
            }
            Status::Left => out.push(Command::DeregisterNode { node: name.clone() }),
            _ => {}
        }
    }
    out
}

/// Runs on every server; acts while it leads.
pub async fn reconcile(cluster: Arc<ClusterNode>, gossip: Arc<Gossip>, reconnect: Duration) {
    let mut leadership = Leadership::default();
    let mut changes = gossip.changes();
    loop {
        leadership.lead(&cluster).await;
        let mut sub = cluster.catalog.hub().subscribe(&WatchKey::Tables(vec![Table::Nodes, Table::Checks]));
        let now = Instant::now();
        let members = gossip.members();
        let commands = cluster.catalog.read(|s| plan(s, &members, now, reconnect));
        if !commands.is_empty() {
            for cmd in &commands {
                match cmd {
                    Command::UpdateCheck { node, .. } => {
                        tracing::info!(target: "agent", "member {node} failed, marking health critical");
                    }
                    Command::DeregisterNode { node } => {
                        tracing::info!(target: "agent", "deregistering member {node} (left or reaped)");
                    }
                    _ => {}
                }
            }
            if let Err(e) = cluster.write(Command::Batch(commands.clone())).await {
                tracing::warn!(error = %e, "could not reconcile members");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            // A member alive again: its agent puts back the statuses of the checks marked
            // critical while it was failed, now rather than at its next periodic sync.
            for cmd in &commands {
                if let Command::Register(r) = cmd {
                    let item = Item::Resync { node: r.node.name.clone(), id: rand::random() };
                    if let Err(e) = gossip.broadcast(item).await {
                        tracing::debug!(error = %e, "asking {} to resync", r.node.name);
                    }
                }
            }
        }
        let reaped = gossip.reap(now - reconnect.min(Duration::from_secs(86_400 * 365)));
        if !reaped.is_empty() {
            tracing::info!(target: "agent", "reaped members: {}", reaped.join(", "));
        }
        let next = members.iter().filter(|m| m.status == Status::Failed).map(|m| m.since + reconnect).min();
        tokio::select! {
            _ = changes.changed() => {}
            _ = leadership.wait(&cluster, &mut sub, next.map(tokio::time::Instant::from_std)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::gossip::Peer;

    fn member(name: &str, status: Status, since: Instant) -> MemberState {
        let peer = Peer { name: name.into(), ..Peer::at("127.0.0.1:8301".parse().expect("addr")) };
        MemberState { peer, status, since }
    }

    fn catalog_with(nodes: &[&str]) -> Catalog {
        let catalog = Catalog::new();
        for (i, node) in nodes.iter().enumerate() {
            let reg = Registration {
                node: NodeSpec { name: node.to_string(), address: "10.0.0.1".into(), ..Default::default() },
                checks: vec![alive_check()],
                ..Default::default()
            };
            catalog.apply(i as u64 + 1, &Command::Register(reg));
        }
        catalog
    }

    const RECONNECT: Duration = Duration::from_secs(100);

    #[test]
    fn a_failed_member_turns_critical_once_and_is_reaped_after_the_reconnect_timeout() {
        let catalog = catalog_with(&["a"]);
        let t0 = Instant::now();
        let failed = [member("a", Status::Failed, t0)];
        let commands = catalog.read(|s| plan(s, &failed, t0, RECONNECT));
        assert!(matches!(&commands[..], [Command::UpdateCheck { status: CheckStatus::Critical, .. }]));
        catalog.apply(10, &commands[0]);
        assert!(catalog.read(|s| plan(s, &failed, t0, RECONNECT)).is_empty(), "already critical");
        let later = catalog.read(|s| plan(s, &failed, t0 + RECONNECT, RECONNECT));
        assert!(matches!(&later[..], [Command::DeregisterNode { node }] if node == "a"));
    }

    #[test]
    fn a_failed_members_service_checks_turn_critical_with_its_serf_health() {
        let catalog = catalog_with(&["a"]);
        let web = Registration {
            node: NodeSpec { name: "a".into(), ..Default::default() },
            skip_node_update: true,
            service: Some(crate::catalog::ServiceSpec {
                id: "web".into(),
                name: "web".into(),
                ..Default::default()
            }),
            checks: vec![CheckRegistration {
                id: "service:web".into(),
                service_id: "web".into(),
                output: String::new(),
                ..alive_check()
            }],
            ..Default::default()
        };
        catalog.apply(5, &Command::Register(web));
        let t0 = Instant::now();
        let commands = catalog.read(|s| plan(s, &[member("a", Status::Failed, t0)], t0, RECONNECT));
        let marked: Vec<&str> = commands
            .iter()
            .filter_map(|c| match c {
                Command::UpdateCheck { check_id, status: CheckStatus::Critical, .. } => {
                    Some(check_id.as_str())
                }
                _ => None,
            })
            .collect();
        assert_eq!(marked, ["serfHealth", "service:web"]);
    }

    #[test]
    fn a_left_member_leaves_the_catalog_and_one_alive_again_passes() {
        let catalog = catalog_with(&["a", "b"]);
        let t0 = Instant::now();
        let failed = [member("b", Status::Failed, t0)];
        let critical = catalog.read(|s| plan(s, &failed, t0, RECONNECT));
        catalog.apply(10, &critical[0]);
        let members =
            [member("a", Status::Left, t0), member("b", Status::Alive, t0), member("c", Status::Alive, t0)];
        let commands = catalog.read(|s| plan(s, &members, t0, RECONNECT));
        assert!(matches!(&commands[0], Command::DeregisterNode { node } if node == "a"));
        assert!(matches!(&commands[1], Command::Register(r) if r.node.name == "b" && r.skip_node_update));
        assert_eq!(commands.len(), 2, "c is not in the catalog: its agent registers it");
    }
}
