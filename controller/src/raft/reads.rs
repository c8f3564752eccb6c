//! Reads in Consul's three consistency modes: `?stale` from this server's state once it has
//! caught up; the default mode from the leader's lease (or a quorum round when the lease has
//! lapsed); `?consistent` after a quorum round that started after the read arrived. A follower
//! asks the leader for the index to wait for (`/raft/read-index`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::network::PeerError;
use super::node::{ClusterError, ClusterNode, FORWARD_TIMEOUT, LEADER_WAIT, Remote, RemoteError};

/// Consul's read consistency modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    Default,
    Stale,
    Consistent,
}

impl ClusterNode {
    /// The read index of a quorum round recent enough that no other leader can have been
    /// elected since: followers do not stand for election within an election timeout of hearing
    /// from their leader, so a quorum's acknowledgement is good for (a margin under) that long,
    /// counted from when the confirming round started, and only within the term this server
    /// leads now. A leader restored from its saved vote after a restart, or one that was paused,
    /// has none.
    fn leader_lease(&self) -> Option<u64> {
        let lease = Duration::from_millis(self.raft.config().election_timeout_min * 8 / 10);
        let since = self.led_since_instant()?;
        self.read_rounds.lease(lease, since)
    }

    /// When this server first saw itself lead in the term it leads now; `None` when it does not.
    pub(super) fn led_since_instant(&self) -> Option<Instant> {
        let term = self.leading_term()?;
        let mut led = self.led_since.lock().unwrap_or_else(|p| p.into_inner());
        match *led {
            Some((t, since)) if t == term => Some(since),
            _ => {
                let now = Instant::now();
                *led = Some((term, now));
                Some(now)
            }
        }
    }

    /// The index up to which this leader must have applied before it answers a read: from its
    /// lease, or from a quorum round. It covers what earlier leaders committed, which a new
    /// leader may not have applied yet; writes acknowledged here were applied before their answer.
    async fn leader_read_index(&self, linearizable: bool) -> Result<u64, String> {
        if !linearizable && let Some(index) = self.leader_lease() {
            return Ok(index);
        }
        self.read_rounds.confirm().await
    }

    /// True once this server holds at least what it had before a restart and, on a follower, what
    /// the leader had committed when it first heard from it.
    pub fn ready_for_stale(&self) -> bool {
        let applied = self.catalog.hub().applied();
        if applied < self.startup_index {
            return false;
        }
        self.leading_term().is_some() || applied >= self.first_leader_commit.load(Ordering::Relaxed)
    }

    /// Leader side of a read barrier: the index a reader must have applied.
    pub async fn read_index_as_leader(&self, linearizable: bool) -> Remote<u64> {
        if !self.is_leader() {
            return Err(RemoteError::NotLeader);
        }
        let index = self.leader_read_index(linearizable).await.map_err(RemoteError::Failed)?;
        // The asking follower waits until it has applied this much: everything committed before
        // the round, and every write acknowledged here so far.
        Ok(index.max(self.catalog.hub().applied()))
    }

    /// Makes a local read safe for `mode` (see Consul's consistency modes). Without a leader, a
    /// default or consistent read waits for one as a write does (Consul holds RPCs the same way,
    /// `rpc_hold_timeout`), so an election is a pause rather than an error.
    pub async fn read_barrier(&self, mode: ReadMode) -> Result<(), ClusterError> {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            match self.read_barrier_once(mode).await {
                Err(ClusterError::NoLeader) if mode != ReadMode::Stale && Instant::now() < deadline => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if self.wait_for_leader(remaining).await.is_none() {
                        return Err(ClusterError::NoLeader);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    async fn read_barrier_once(&self, mode: ReadMode) -> Result<(), ClusterError> {
        match mode {
            ReadMode::Stale => {
                if self.ready_for_stale() {
                    Ok(())
                } else {
                    Err(ClusterError::NotCaughtUp)
                }
            }
            // Consul's default mode: the leader answers from its state while its lease holds,
            // and confirms its leadership with a quorum round when it does not; `?consistent`
            // always confirms. Either way, once it has applied what was committed before.
            ReadMode::Default | ReadMode::Consistent if self.is_leader() => {
                let linearizable = mode == ReadMode::Consistent;
                let index = self.leader_read_index(linearizable).await.map_err(|_| ClusterError::NoLeader)?;
                tokio::time::timeout(FORWARD_TIMEOUT, self.catalog.hub().wait_applied(index))
                    .await
                    .map_err(|_| ClusterError::Timeout)
            }
            _ => {
                let (_, leader) = self.leader().ok_or(ClusterError::NoLeader)?;
                let linearizable = mode == ReadMode::Consistent;
                let answer: Result<Remote<u64>, PeerError> = self
                    .transport
                    .call(&leader.raft_addr, "read-index", &linearizable, FORWARD_TIMEOUT)
                    .await;
                let index = match answer {
                    Ok(Ok(index)) => index,
                    Ok(Err(_)) | Err(_) => return Err(ClusterError::NoLeader),
                };
                tokio::time::timeout(FORWARD_TIMEOUT, self.catalog.hub().wait_applied(index))
                    .await
                    .map_err(|_| ClusterError::Timeout)
            }
        }
    }
}
