//! Autopilot, on the leader, as Consul's: a server that joins is a non-voter until it has been
//! healthy (alive by gossip, its log within `MaxTrailingLogs` of the leader's) for
//! `ServerStabilizationTime`, then it is promoted. With `CleanupDeadServers`, voters that gossip
//! marks failed (or left) are removed from Raft, never a majority at once nor below `MinQuorum`;
//! census waits `ServerStabilizationTime` first, so that a server being restarted keeps its seat.
//! Alive servers of this datacenter that Raft does not know (one removed while it was down) are
//! added back, as non-voters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::leadership::Leadership;
use crate::catalog::{Table, WatchKey};
use crate::gossip::{Gossip, Status};
use crate::raft::{ClusterNode, NodeId, ServerNode};

/// How often the leader looks again without a change to wake it (Consul: ServerHealthInterval).
const INTERVAL: Duration = Duration::from_secs(1);

/// One server as autopilot sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerView {
    pub id: NodeId,
    pub voter: bool,
    /// Its gossip status; `None` when gossip does not know it.
    pub gossip: Option<Status>,
    /// The last log index the leader knows it holds (`None`: unknown, or the leader itself).
    pub matched: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub cleanup_dead_servers: bool,
    pub max_trailing_logs: u64,
    pub min_quorum: usize,
    pub stabilization: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Promote(NodeId),
    Remove(NodeId),
}

/// The clocks autopilot keeps between looks (reset when leadership is won anew).
#[derive(Debug, Default)]
pub struct Autopilot {
    healthy_since: HashMap<NodeId, Instant>,
    failed_since: HashMap<NodeId, Instant>,
}

impl Autopilot {
    /// What to do now. `leader` is never removed; `last_index` is the leader's last log index.
    pub fn plan(
        &mut self,
        servers: &[ServerView],
        leader: NodeId,
        last_index: u64,
        settings: &Settings,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for s in servers.iter().filter(|s| !s.voter) {
            let caught_up =
                s.matched.is_some_and(|m| m.saturating_add(settings.max_trailing_logs) >= last_index);
            if s.gossip == Some(Status::Alive) && caught_up {
                let since = *self.healthy_since.entry(s.id).or_insert(now);
                if now.duration_since(since) >= settings.stabilization {
                    actions.push(Action::Promote(s.id));
                }
            } else {
                self.healthy_since.remove(&s.id);
            }
        }
        let dead = |s: &ServerView| matches!(s.gossip, Some(Status::Failed | Status::Left)) && s.id != leader;
        for s in servers {
            if dead(s) {
                self.failed_since.entry(s.id).or_insert(now);
            } else {
                self.failed_since.remove(&s.id);
            }
        }
        self.healthy_since.retain(|id, _| servers.iter().any(|s| s.id == *id && !s.voter));
        self.failed_since.retain(|id, _| servers.iter().any(|s| s.id == *id));
        if !settings.cleanup_dead_servers {
            return actions;
        }
        let settled = |s: &ServerView| {
            dead(s)
                && self
                    .failed_since
                    .get(&s.id)
                    .is_some_and(|t| now.duration_since(*t) >= settings.stabilization)
        };
        let voters = servers.iter().filter(|s| s.voter).count();
        let dead_voters: Vec<NodeId> =
            servers.iter().filter(|s| s.voter && settled(s)).map(|s| s.id).collect();
        // Never a majority of the voters at once (that could be the healthy side of a partition),
        // nor below MinQuorum.
        let allowed = dead_voters.len() <= voters.saturating_sub(1) / 2
            && voters - dead_voters.len() >= settings.min_quorum;
        if allowed {
            actions.extend(dead_voters.into_iter().map(Action::Remove));
        } else if !dead_voters.is_empty() {
            tracing::warn!(
                target: "agent",
                "autopilot: not removing {} dead servers of {voters} voters (a majority, or below MinQuorum)",
                dead_voters.len()
            );
        }
        actions.extend(servers.iter().filter(|s| !s.voter && settled(s)).map(|s| Action::Remove(s.id)));
        actions
    }
}

fn settings_of(server: &ClusterNode) -> Settings {
    let config = server.catalog.read(crate::http::autopilot_config);
    Settings {
        cleanup_dead_servers: config.cleanup_dead_servers,
        max_trailing_logs: config.max_trailing_logs,
        min_quorum: config.min_quorum as usize,
        stabilization: config.server_stabilization_time.0,
    }
}

/// The servers of the Raft configuration with their gossip status and replication progress.
fn views(server: &ClusterNode, gossip: &Gossip) -> Vec<ServerView> {
    let members = gossip.members();
    let metrics = server.metrics();
    server
        .servers()
        .into_iter()
        .map(|(id, node, voter)| ServerView {
            id,
            voter,
            gossip: members.iter().find(|m| m.peer.name == node.name).map(|m| m.status),
            matched: metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&id))
                .and_then(|m| m.as_ref())
                .map(|l| l.index),
        })
        .collect()
}

/// Alive servers of this datacenter that gossip knows and Raft does not.
fn unknown_alive(server: &ClusterNode, gossip: &Gossip, dc: &str) -> Vec<(NodeId, ServerNode)> {
    let known: Vec<NodeId> = server.servers().into_iter().map(|(id, _, _)| id).collect();
    gossip
        .alive_servers()
        .into_iter()
        .filter(|p| p.tag("dc") == dc)
        .filter_map(|p| crate::agent::server_of(&p))
        .filter(|(id, _)| !known.contains(id))
        .collect()
}

pub async fn run(server: Arc<ClusterNode>, gossip: Arc<Gossip>, dc: String) {
    let mut autopilot = Autopilot::default();
    let mut leadership = Leadership::default();
    loop {
        if leadership.lead(&server).await {
            autopilot = Autopilot::default();
        }
        let mut sub = server.catalog.hub().subscribe(&WatchKey::Tables(vec![Table::Autopilot]));
        for (id, node) in unknown_alive(&server, &gossip, &dc) {
            tracing::info!(target: "agent", "autopilot: adding server {} back as a non-voter", node.name);
            if let Err(e) = server.add_server_as_leader(id, node).await {
                tracing::warn!(target: "agent", error = %e, "autopilot: could not add a server");
            }
        }
        let last_index = server.stats().last_log_index;
        let plan = autopilot.plan(
            &views(&server, &gossip),
            server.id,
            last_index,
            &settings_of(&server),
            Instant::now(),
        );
        for action in plan {
            let (what, answer) = match action {
                Action::Promote(id) => ("promoting", server.promote_as_leader(id).await),
                Action::Remove(id) => ("removing dead server", server.remove_server_as_leader(id).await),
            };
            match answer {
                Ok(()) => tracing::info!(target: "agent", "autopilot: {what} {action:?}"),
                Err(e) => tracing::warn!(target: "agent", error = %e, "autopilot: {what} {action:?} failed"),
            }
        }
        leadership.wait(&server, &mut sub, Some(Instant::now() + INTERVAL)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: NodeId, voter: bool, gossip: Status, matched: u64) -> ServerView {
        ServerView { id, voter, gossip: Some(gossip), matched: Some(matched) }
    }

    fn settings(stabilization: u64) -> Settings {
        Settings {
            cleanup_dead_servers: true,
            max_trailing_logs: 250,
            min_quorum: 0,
            stabilization: Duration::from_secs(stabilization),
        }
    }

    #[test]
    fn a_non_voter_is_promoted_once_stable_and_caught_up() {
        let t0 = Instant::now();
        let mut ap = Autopilot::default();
        let behind = [view(1, true, Status::Alive, 1000), view(4, false, Status::Alive, 100)];
        assert!(ap.plan(&behind, 1, 1000, &settings(10), t0).is_empty(), "750 entries behind");
        let caught_up = [view(1, true, Status::Alive, 1000), view(4, false, Status::Alive, 900)];
        assert!(ap.plan(&caught_up, 1, 1000, &settings(10), t0 + Duration::from_secs(1)).is_empty());
        let later = t0 + Duration::from_secs(11);
        assert_eq!(ap.plan(&caught_up, 1, 1000, &settings(10), later), [Action::Promote(4)]);
        // A failed look in between starts the clock again.
        let mut ap = Autopilot::default();
        ap.plan(&caught_up, 1, 1000, &settings(10), t0);
        let failed = [view(1, true, Status::Alive, 1000), view(4, false, Status::Failed, 900)];
        ap.plan(&failed, 1, 1000, &settings(10), t0 + Duration::from_secs(5));
        assert!(ap.plan(&caught_up, 1, 1000, &settings(10), t0 + Duration::from_secs(12)).is_empty());
    }

    #[test]
    fn dead_voters_go_after_the_grace_never_a_majority_never_the_leader() {
        let t0 = Instant::now();
        let mut ap = Autopilot::default();
        let one_dead = [
            view(1, true, Status::Alive, 10),
            view(2, true, Status::Alive, 10),
            view(3, true, Status::Failed, 5),
        ];
        assert!(ap.plan(&one_dead, 1, 10, &settings(10), t0).is_empty(), "grace first");
        assert_eq!(
            ap.plan(&one_dead, 1, 10, &settings(10), t0 + Duration::from_secs(10)),
            [Action::Remove(3)]
        );
        let mut ap = Autopilot::default();
        let two_dead = [
            view(1, true, Status::Alive, 10),
            view(2, true, Status::Failed, 10),
            view(3, true, Status::Failed, 5),
        ];
        ap.plan(&two_dead, 1, 10, &settings(0), t0);
        assert!(ap.plan(&two_dead, 1, 10, &settings(0), t0).is_empty(), "two of three is a majority");
        let leader_failed = [view(1, true, Status::Failed, 10), view(2, true, Status::Alive, 10)];
        assert!(Autopilot::default().plan(&leader_failed, 1, 10, &settings(0), t0).is_empty());
        let mut quorum = settings(0);
        quorum.min_quorum = 3;
        assert!(Autopilot::default().plan(&one_dead, 1, 10, &quorum, t0).is_empty(), "MinQuorum");
        let mut off = settings(0);
        off.cleanup_dead_servers = false;
        assert!(Autopilot::default().plan(&one_dead, 1, 10, &off, t0).is_empty(), "CleanupDeadServers off");
    }
}
