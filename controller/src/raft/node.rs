//! A running Raft member: start-up, who leads, the write path (propose here, or forward to the
//! leader), stats and leadership hand-over. Reads are in `reads.rs`, elections in `election.rs`,
//! membership changes in `membership.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::{Config, ServerState, SnapshotPolicy};

use super::batch::{WriteBatcher, WriteFailure};
use super::disk_space::DiskSpace;
use super::log_store::LogStore;
use super::network::{Network, PeerError, PeerTransport};
use super::read_rounds::ReadRounds;
use super::state_machine::StateMachine;
use super::types::{NodeId, Raft, ServerNode};
use crate::catalog::{Catalog, Command, CommandResult};

/// A snapshot of one server's Raft state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftStats {
    pub state: &'static str,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    /// Since the leader was last heard from; 0 on the leader, `None` before any contact.
    pub last_contact_ms: Option<u64>,
    /// Voters other than this server.
    pub num_peers: usize,
    /// Pre-votes this server asked for and did not win (see election.rs).
    pub prevotes_lost: u64,
    /// Rebuilding a log damaged in the middle: no votes until it has (recovery.rs).
    pub recovering: bool,
}

fn leading_term(m: &openraft::RaftMetrics<NodeId, ServerNode>, id: NodeId) -> Option<u64> {
    (m.state == ServerState::Leader && m.current_leader == Some(id)).then_some(m.current_term)
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("No cluster leader")]
    NoLeader,
    /// A client agent knows no server that answers.
    #[error("No known Consul servers")]
    NoServers,
    #[error("this server has not caught up with the cluster yet; retry, or read from another server")]
    NotCaughtUp,
    #[error("timed out waiting for the cluster")]
    Timeout,
    /// A write forwarded to a leader that was replaced before it answered: it may or may not
    /// have been committed, so it is not retried.
    #[error("leadership changed while the write was in flight; its outcome is unknown")]
    LeaderChanged,
    #[error("raft: {0}")]
    Raft(String),
    #[error("leader: {0}")]
    Forward(String),
    #[error("storage: {0}")]
    Storage(String),
    /// The leader's disk is (nearly) full: the write was not proposed.
    #[error(
        "insufficient disk space for the Raft log on the leader: {free} bytes free, {needed} kept in reserve; free space on the leader's data dir"
    )]
    DiskFull { free: u64, needed: u64 },
    /// A client agent's write whose token lacks a permission (Consul's 403 text).
    #[error("{0}")]
    PermissionDenied(String),
}

/// Why a server refused a request another server sent it over the Raft port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// Only the leader does this, and this server does not lead (any more): ask the leader.
    #[error("not leader")]
    NotLeader,
    #[error("{0}")]
    Failed(String),
    #[error("insufficient disk space on the leader: {free} bytes free, {needed} in reserve")]
    DiskFull { free: u64, needed: u64 },
    /// A client agent's write whose token lacks a permission (Consul's 403 text).
    #[error("{0}")]
    PermissionDenied(String),
}

impl RemoteError {
    pub fn failed(e: impl std::fmt::Display) -> RemoteError {
        RemoteError::Failed(e.to_string())
    }
}

/// Answer of a forwarded write or read-index request, as sent over the Raft port.
pub type Remote<T> = Result<T, RemoteError>;

/// Timing of elections and heartbeats, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming { heartbeat_ms: 100, election_min_ms: 300, election_max_ms: 600 }
    }
}

pub struct ClusterNode {
    pub id: NodeId,
    pub me: ServerNode,
    pub raft: Raft,
    pub catalog: Arc<Catalog>,
    pub transport: PeerTransport,
    pub(super) log_store: LogStore,
    /// When this server started (elections count quiet time from here at the earliest).
    pub(super) started: Instant,
    /// When this server last granted a vote (it does not stand itself for a while after).
    last_vote_granted: Mutex<Option<Instant>>,
    /// Pre-votes lost so far.
    pub(super) prevotes_lost: AtomicU64,
    /// Last log index on disk at start: stale reads wait until it is applied again.
    pub(super) startup_index: u64,
    /// Leader commit index seen in the first append from a leader (u64::MAX until then).
    pub(super) first_leader_commit: AtomicU64,
    last_leader_contact: Mutex<Option<Instant>>,
    /// The term this server leads in and when it first saw itself lead in it.
    pub(super) led_since: Mutex<Option<(u64, Instant)>>,
    /// Leader-side group commit of client writes.
    batcher: WriteBatcher,
    /// The leader's free-space reserve under the log.
    disk: DiskSpace,
    /// Leader-side shared quorum rounds for linearizable reads (and check-quorum).
    pub(super) read_rounds: Arc<ReadRounds>,
}

pub(super) const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const LEADER_WAIT: Duration = Duration::from_secs(8);

impl ClusterNode {
    pub async fn start(
        id: NodeId,
        me: ServerNode,
        data_dir: Option<PathBuf>,
        timing: RaftTiming,
        catalog: Arc<Catalog>,
        transport: PeerTransport,
    ) -> Result<Arc<ClusterNode>, ClusterError> {
        let storage = |e: &dyn std::fmt::Display| ClusterError::Storage(e.to_string());
        let raft_dir = data_dir.as_ref().map(|d| d.join("raft"));
        let log_store = LogStore::open(raft_dir.as_deref()).map_err(|e| storage(&e))?;
        let state_machine =
            StateMachine::open(catalog.clone(), raft_dir.as_deref()).map_err(|e| storage(&e))?;
        log_store.purge_behind(state_machine.durable_snapshot());
        let config = Config {
            cluster_name: "census".into(),
            heartbeat_interval: timing.heartbeat_ms,
            election_timeout_min: timing.election_min_ms,
            election_timeout_max: timing.election_max_ms,
            // Also by volume: see snapshot_trigger.rs.
            snapshot_policy: SnapshotPolicy::LogsSinceLast(8192),
            // Entries kept after a snapshot for followers that lag a little (further behind,
            // they are sent the snapshot); with batches of up to 256 writes each, 128 entries
            // are ~10 MB at most.
            max_in_snapshot_log_to_keep: 128,
            // An entry holds up to 256 writes: 32 entries keep one append well under its deadline
            // (the heartbeat interval) when a follower catches up under load.
            max_payload_entries: 32,
            // Elections go through a pre-vote first: see election.rs.
            enable_elect: false,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let mut reader = log_store.clone();
        let startup_index = openraft::storage::RaftLogStorage::get_log_state(&mut reader)
            .await
            .map_err(|e| storage(&e))?
            .last_log_id
            .map(|l| l.index)
            .unwrap_or(0);
        let raft = Raft::new(
            id,
            Arc::new(config),
            Network::new(transport.clone()),
            log_store.clone(),
            state_machine.clone(),
        )
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        tokio::spawn(super::snapshot_trigger::run(
            raft.clone(),
            log_store.clone(),
            state_machine,
            super::snapshot_trigger::SNAPSHOT_BYTES_FLOOR,
        ));
        let batcher = WriteBatcher::start(raft.clone());
        let read_raft = raft.clone();
        // A round confirms leadership only: readers wait for the apply themselves (reads.rs),
        // so a lagging apply neither slows check-quorum nor makes a healthy leader look cut off.
        // A round that gets no quorum answer within the longest election timeout fails.
        let round_deadline = Duration::from_millis(timing.election_max_ms);
        let read_rounds = ReadRounds::new(move || {
            let raft = read_raft.clone();
            async move {
                match tokio::time::timeout(round_deadline, raft.get_read_log_id()).await {
                    Ok(Ok((read, _applied))) => Ok(read.map(|l| l.index).unwrap_or(0)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no quorum answered within {round_deadline:?}")),
                }
            }
        });
        let disk = DiskSpace::new(raft_dir.clone());
        let node = Arc::new(ClusterNode {
            disk,
            id,
            me,
            batcher,
            read_rounds,
            raft,
            catalog,
            transport,
            log_store,
            startup_index,
            first_leader_commit: AtomicU64::new(u64::MAX),
            last_leader_contact: Mutex::new(None),
            led_since: Mutex::new(None),
            started: Instant::now(),
            last_vote_granted: Mutex::new(None),
            prevotes_lost: AtomicU64::new(0),
        });
        tokio::spawn(super::election::run(Arc::downgrade(&node)));
        tokio::spawn(super::recovery::catch_up(Arc::downgrade(&node)));
        Ok(node)
    }

    /// The free space kept in reserve under the log (0: none); see disk_space.rs.
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.disk.set_min_free(bytes);
    }

    /// Waits until Raft stops on its own (a storage failure: a log write or sync that failed);
    /// answers why. Never returns while Raft runs or after an orderly shutdown.
    pub async fn failed(&self) -> String {
        let mut rx = self.raft.metrics();
        let failed = |m: &openraft::RaftMetrics<NodeId, ServerNode>| matches!(&m.running_state, Err(f) if !matches!(f, openraft::error::Fatal::Stopped));
        if let Ok(m) = rx.wait_for(failed).await {
            return m.running_state.as_ref().err().map(ToString::to_string).unwrap_or_default();
        }
        // The metrics went away: Raft's core is gone. After an orderly stop its last word was
        // `Stopped`; anything else (a panic in the core) is a failure too.
        let last = rx.borrow().running_state.clone();
        match last {
            Err(openraft::error::Fatal::Stopped) => std::future::pending().await,
            Err(fatal) => fatal.to_string(),
            Ok(()) => "the Raft core stopped unexpectedly".to_string(),
        }
    }

    pub fn metrics(&self) -> openraft::RaftMetrics<NodeId, ServerNode> {
        self.raft.metrics().borrow().clone()
    }

    /// The current leader and its addresses, if one is known (never this server while it has
    /// lost its quorum: see election.rs).
    pub fn leader(&self) -> Option<(NodeId, ServerNode)> {
        let (id, node) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let id = m.current_leader?;
            (id, m.membership_config.membership().get_node(&id).cloned()?)
        };
        // A leader cut off from its quorum, or a follower that has not heard from its leader for
        // longer than it would wait before standing for election, knows no leader (as Consul's
        // would, having stepped down or started an election).
        let unheard = || self.since_leader_contact().is_none_or(|d| d > self.follower_lease());
        if (id == self.id && self.lost_quorum()) || (id != self.id && unheard()) {
            return None;
        }
        Some((id, node))
    }

    /// True while this server leads and has not lost its quorum.
    pub fn is_leader(&self) -> bool {
        self.leading_term().is_some() && !self.lost_quorum()
    }

    /// The term this server leads in, `None` while it does not lead.
    pub fn leading_term(&self) -> Option<u64> {
        leading_term(&self.raft.metrics().borrow(), self.id)
    }

    /// Waits until `leading_term()` is no longer `seen` (leadership won, lost, or a new term).
    pub async fn leadership_changed(&self, seen: Option<u64>) {
        let mut rx = self.raft.metrics();
        let id = self.id;
        // Fails only when Raft shuts down; then there is nothing left to wait for.
        if rx.wait_for(|m| leading_term(m, id) != seen).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub fn known_leader(&self) -> bool {
        self.leader().is_some()
    }

    /// Milliseconds since the leader was last heard from (0 on the leader, huge if never).
    pub fn last_contact_ms(&self) -> u64 {
        self.leader_contact_ms().unwrap_or(u64::MAX / 2)
    }

    /// Milliseconds since the leader was last heard from: 0 on the leader, `None` if never.
    fn leader_contact_ms(&self) -> Option<u64> {
        if self.is_leader() {
            return Some(0);
        }
        self.since_leader_contact().map(|d| d.as_millis() as u64)
    }

    /// Since an append from a leader last succeeded here (`None`: never).
    pub(super) fn since_leader_contact(&self) -> Option<Duration> {
        let contact = self.last_leader_contact.lock().unwrap_or_else(|p| p.into_inner());
        contact.map(|t| t.elapsed())
    }

    /// Called by the Raft RPC server when this server grants a candidate its vote.
    pub fn note_vote_granted(&self) {
        *self.last_vote_granted.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    pub(super) fn last_vote_granted(&self) -> Option<Instant> {
        *self.last_vote_granted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the Raft RPC server for every append from a leader.
    pub fn note_leader_contact(&self, leader_commit: u64) {
        *self.last_leader_contact.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let _ = self.first_leader_commit.compare_exchange(
            u64::MAX,
            leader_commit,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Waits until a leader is known, up to `timeout`.
    pub(super) async fn wait_for_leader(&self, timeout: Duration) -> Option<(NodeId, ServerNode)> {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return None;
            }
        }
    }

    /// Returns once a leader other than `old` is known.
    async fn leader_replaced(&self, old: NodeId) {
        let mut rx = self.raft.metrics();
        let replaced =
            |m: &openraft::RaftMetrics<NodeId, ServerNode>| m.current_leader.is_some_and(|id| id != old);
        if rx.wait_for(replaced).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Proposes `cmd` through the leader and returns its log index and result.
    pub async fn write(&self, cmd: Command) -> Result<(u64, CommandResult), ClusterError> {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let Some((leader_id, leader)) = self.wait_for_leader(remaining).await else {
                return Err(ClusterError::NoLeader);
            };
            if leader_id == self.id {
                if let Err(short) = self.disk.check() {
                    return Err(ClusterError::DiskFull { free: short.free, needed: short.needed });
                }
                match self.batcher.write(cmd.clone()).await {
                    Ok(done) => return Ok(done),
                    Err(WriteFailure::NotLeader) => {}
                    Err(WriteFailure::Failed(e)) => return Err(ClusterError::Raft(e)),
                }
            } else {
                let forward = self.transport.call(&leader.raft_addr, "forward", &cmd, FORWARD_TIMEOUT);
                // A leader cut off from the others cannot answer until the partition heals:
                // once another leader is known, the client hears so instead of waiting.
                let answer: Result<Remote<(u64, CommandResult)>, PeerError> = tokio::select! {
                    biased;
                    answer = forward => answer,
                    () = self.leader_replaced(leader_id) => return Err(ClusterError::LeaderChanged),
                };
                match answer {
                    Ok(Ok(done)) => {
                        // Read-your-writes on this server: answer once it has applied the write too.
                        let applied = self.catalog.hub().wait_applied(done.0);
                        if tokio::time::timeout(FORWARD_TIMEOUT, applied).await.is_err() {
                            return Err(ClusterError::Timeout);
                        }
                        return Ok(done);
                    }
                    Ok(Err(RemoteError::NotLeader)) => {}
                    Ok(Err(RemoteError::DiskFull { free, needed })) => {
                        return Err(ClusterError::DiskFull { free, needed });
                    }
                    Ok(Err(RemoteError::Failed(msg))) => return Err(ClusterError::Forward(msg)),
                    Ok(Err(RemoteError::PermissionDenied(msg))) => {
                        return Err(ClusterError::PermissionDenied(msg));
                    }
                    // Connection refused: the leader is gone; wait for the next one.
                    Err(PeerError::Unreachable { source, .. }) if source.is_connect() => {}
                    Err(e) => return Err(ClusterError::Forward(e.to_string())),
                }
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::NoLeader);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Leader side of a forwarded write.
    pub async fn write_as_leader(&self, cmd: Command) -> Remote<(u64, CommandResult)> {
        if let Err(short) = self.disk.check() {
            return Err(RemoteError::DiskFull { free: short.free, needed: short.needed });
        }
        match self.batcher.write(cmd).await {
            Ok(done) => Ok(done),
            Err(WriteFailure::NotLeader) => Err(RemoteError::NotLeader),
            Err(WriteFailure::Failed(e)) => Err(RemoteError::Failed(e)),
        }
    }

    /// This server's view of Raft, as `/v1/agent/self` reports it under `Stats.raft`.
    pub fn stats(&self) -> RaftStats {
        let m = self.metrics();
        let state = match m.state {
            // Cut off from its quorum: it will step down when it hears of the new term.
            ServerState::Leader if self.lost_quorum() => "Follower",
            ServerState::Leader => "Leader",
            ServerState::Candidate => "Candidate",
            ServerState::Follower => "Follower",
            ServerState::Learner => "Learner",
            ServerState::Shutdown => "Shutdown",
        };
        RaftStats {
            state,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            last_contact_ms: self.leader_contact_ms(),
            num_peers: m.membership_config.membership().voter_ids().filter(|id| *id != self.id).count(),
            prevotes_lost: self.prevotes_lost.load(Ordering::Relaxed),
            recovering: self.recovering(),
        }
    }

    /// Every server in the Raft configuration, with whether it votes.
    pub fn servers(&self) -> Vec<(NodeId, ServerNode, bool)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership.nodes().map(|(id, node)| (*id, node.clone(), voters.contains(id))).collect()
    }

    pub fn is_initialized(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.membership_config.membership().voter_ids().next().is_some()
    }

    /// Leader side, before this server stops (a pod's preStop): stop taking part in Raft and
    /// ask the most caught-up voter to stand for election at once, so that the cluster has a new
    /// leader as soon as the followers' lease on this one runs out, instead of after an election
    /// timeout. Answers the voter asked; `None` when this server does not lead.
    pub async fn step_down(&self) -> Remote<Option<NodeId>> {
        if !self.is_leader() {
            return Ok(None);
        }
        let metrics = self.metrics();
        let voters: Vec<(NodeId, ServerNode)> = self
            .servers()
            .into_iter()
            .filter(|(id, _, voter)| *voter && *id != self.id)
            .map(|(id, n, _)| (id, n))
            .collect();
        let matched = |id: &NodeId| {
            metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(id))
                .and_then(|m| m.as_ref())
                .map_or(0, |l| l.index)
        };
        let mut voters = voters;
        voters.sort_by_key(|(id, _)| std::cmp::Reverse(matched(id)));
        if voters.is_empty() {
            return Err(RemoteError::Failed("no other voter to hand leadership to".into()));
        }
        self.raft.shutdown().await.map_err(RemoteError::failed)?;
        // The most caught-up first; one that refuses (rebuilding a damaged log: recovery.rs) or
        // does not answer quickly passes the turn to the next. All within the followers' lease
        // on this leader: after it they elect one themselves, and a hand-over would only disturb.
        let mut last_error = RemoteError::Failed("no voter stood for election".into());
        let each = Duration::from_millis(self.raft.config().election_timeout_min);
        let deadline = Instant::now() + self.follower_lease();
        for (target, node) in voters {
            if Instant::now() >= deadline {
                break;
            }
            let answer: Result<Remote<()>, _> =
                self.transport.call(&node.raft_addr, "elect", &(), each).await;
            match answer {
                Ok(Ok(())) => return Ok(Some(target)),
                Ok(Err(e)) => last_error = e,
                Err(e) => last_error = RemoteError::failed(e),
            }
        }
        Err(last_error)
    }

    /// Follower side of `step_down`: stand for election now (not while rebuilding a damaged log).
    pub async fn elect_now(&self) -> Remote<()> {
        if self.recovering() {
            return Err(RemoteError::Failed(
                "rebuilding a damaged Raft log; not standing for election".into(),
            ));
        }
        self.raft.trigger().elect().await.map_err(RemoteError::failed)
    }

    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
        self.log_store.close();
    }
}
