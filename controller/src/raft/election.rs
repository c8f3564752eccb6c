//! Elections without disruption: PreVote and check-quorum (Raft thesis §9.6), which openraft 0.9
//! does not have, built around it.
//!
//! openraft's own election timer is off (`enable_elect: false`). A voter that has not heard from
//! a leader for a while first asks the other voters whether they *would* vote for it (a pre-vote:
//! nobody's term changes). Only when a majority says yes does it ask openraft to stand for
//! election. A server cut off from the others therefore never raises its term, and when the
//! partition heals it rejoins as a follower instead of deposing a healthy leader.
//!
//! A voter says yes only if it has not heard from a leader for openraft's follower lease (it
//! would refuse the real vote inside that lease anyway), it does not lead itself, and the
//! candidate's log is at least as up to date as its own.
//!
//! Check-quorum: a leader confirms its leadership with a quorum round at least every shortest
//! election timeout (the same rounds default reads are served from, so with reads coming in it
//! adds none). A leader without a
//! successful round for a whole election timeout no longer calls itself leader: clients get
//! "No cluster leader" (and retry elsewhere) instead of a server that cannot commit.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::node::{ClusterNode, FORWARD_TIMEOUT};
use super::types::{LogId, NodeId};

/// Asked of each voter before standing for election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    pub candidate: NodeId,
    /// The candidate's last log entry.
    pub last_log: Option<LogId>,
}

/// What a voter knows when it answers a pre-vote.
#[derive(Debug, Clone, Copy)]
pub(super) struct VoterView {
    pub leads: bool,
    /// Since this voter last heard from a leader (`None`: never).
    pub since_leader: Option<Duration>,
    /// openraft's follower lease: it refuses real votes this long after hearing from a leader.
    pub lease: Duration,
}

/// Whether a voter in `view`, whose last log entry is `mine`, would vote for `req`'s candidate.
pub(super) fn would_vote(view: VoterView, mine: Option<LogId>, req: &PreVoteRequest) -> bool {
    if view.leads {
        return false;
    }
    if view.since_leader.is_some_and(|since| since < view.lease) {
        return false;
    }
    req.last_log >= mine
}

impl ClusterNode {
    /// Voter side of a pre-vote.
    pub fn pre_vote(&self, req: &PreVoteRequest) -> bool {
        if self.recovering() {
            return false;
        }
        let view = VoterView {
            leads: self.is_leader(),
            since_leader: self.since_leader_contact(),
            lease: self.follower_lease(),
        };
        would_vote(view, self.log_store.last_log_id(), req)
    }

    /// How long a follower refuses votes after hearing from its leader: openraft's leader lease,
    /// which it sets to the longest election timeout.
    pub(super) fn follower_lease(&self) -> Duration {
        Duration::from_millis(self.raft.config().election_timeout_max)
    }

    fn voters_but_me(&self) -> Option<Vec<String>> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        if !membership.voter_ids().any(|id| id == self.id) {
            return None;
        }
        Some(
            membership
                .voter_ids()
                .filter(|id| *id != self.id)
                .filter_map(|id| membership.get_node(&id).map(|n| n.raft_addr.clone()))
                .collect(),
        )
    }

    /// One pre-vote round: true when a majority of the voters (this one included) would vote.
    async fn pre_vote_round(&self) -> bool {
        let Some(peers) = self.voters_but_me() else {
            return false;
        };
        let req = PreVoteRequest { candidate: self.id, last_log: self.log_store.last_log_id() };
        let voters = peers.len() + 1;
        let needed = voters / 2 + 1;
        let deadline = Duration::from_millis(self.raft.config().election_timeout_min);
        let mut asks: futures::stream::FuturesUnordered<_> = peers
            .iter()
            .map(|addr| async {
                let answer: Result<bool, _> = self.transport.call(addr, "pre-vote", &req, deadline).await;
                answer.unwrap_or(false)
            })
            .collect();
        // Done at the majority: a voter that does not answer (paused, cut off) is not waited for.
        let mut yes = 1;
        while yes < needed {
            match asks.next().await {
                Some(true) => yes += 1,
                Some(false) => {}
                None => return false,
            }
        }
        true
    }

    /// Since this server last heard from a leader, granted a vote, or started; `None` on the
    /// leader.
    fn quiet_for(&self) -> Option<Duration> {
        if self.raft.metrics().borrow().state == openraft::ServerState::Leader {
            return None;
        }
        let since = |t: Option<Instant>| t.map(|t| t.elapsed());
        [since(Some(self.started)), self.since_leader_contact(), since(self.last_vote_granted())]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Runs elections (with pre-votes) and check-quorum rounds for `node` until it shuts down.
pub(super) async fn run(node: std::sync::Weak<ClusterNode>) {
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut last_attempt: Option<Instant> = None;
    let mut timeout = Duration::ZERO;
    loop {
        let Some(node) = node.upgrade() else { return };
        let config = node.raft.config().clone();
        let tick = Duration::from_millis(config.heartbeat_interval / 2).max(Duration::from_millis(10));
        if node.raft.metrics().borrow().state == openraft::ServerState::Shutdown {
            return;
        }
        if node.leading_term().is_some() {
            node.keep_quorum_fresh(Duration::from_millis(config.election_timeout_min));
            last_attempt = None;
        } else if node.recovering() || node.voters_but_me().is_none() {
            // Rebuilding a damaged log (recovery.rs), or a learner: no part in elections, and no
            // pre-vote counted as lost.
        } else if let Some(quiet) = node.quiet_for() {
            let since_attempt = last_attempt.map_or(Duration::MAX, |t| t.elapsed());
            if timeout.is_zero() {
                let spread = config.election_timeout_max - config.election_timeout_min;
                timeout = node.follower_lease() + Duration::from_millis(rng.gen_range(0..=spread));
            }
            if quiet >= timeout && since_attempt >= timeout {
                last_attempt = Some(Instant::now());
                timeout = Duration::ZERO;
                let began = Instant::now();
                // Won, and nothing happened meanwhile: no leader heard from, no vote granted
                // (another candidate may have won while the round ran).
                let still_quiet = |node: &ClusterNode| node.quiet_for().is_some_and(|q| q >= began.elapsed());
                if node.pre_vote_round().await && still_quiet(&node) {
                    tracing::info!(node = node.id, "pre-vote won; standing for election");
                    if node.raft.trigger().elect().await.is_err() {
                        return;
                    }
                } else {
                    node.prevotes_lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        drop(node);
        tokio::time::sleep(tick).await;
    }
}

impl ClusterNode {
    /// On the leader: start a quorum round when the last one is older than `every`, so that the
    /// lease stays fresh and a leader cut off from the quorum notices.
    fn keep_quorum_fresh(&self, every: Duration) {
        if self.read_rounds.started_within(every) {
            return;
        }
        let rounds = self.read_rounds.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(FORWARD_TIMEOUT, rounds.confirm()).await;
        });
    }

    /// True on a leader that has had no successful quorum round for an election timeout (after
    /// its first one): it may have been deposed without knowing.
    pub(super) fn lost_quorum(&self) -> bool {
        let Some(since) = self.led_since_instant() else { return false };
        let window = self.follower_lease();
        since.elapsed() > window && !self.read_rounds.confirmed_within(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(openraft::CommittedLeaderId::new(term, 0), index))
    }

    fn view(leads: bool, since_ms: Option<u64>) -> VoterView {
        VoterView {
            leads,
            since_leader: since_ms.map(Duration::from_millis),
            lease: Duration::from_millis(600),
        }
    }

    fn ask(last_log: Option<LogId>) -> PreVoteRequest {
        PreVoteRequest { candidate: 2, last_log }
    }

    #[test]
    fn a_voter_that_heard_from_its_leader_within_the_lease_refuses() {
        assert!(!would_vote(view(false, Some(599)), log(3, 10), &ask(log(3, 10))));
        assert!(would_vote(view(false, Some(600)), log(3, 10), &ask(log(3, 10))));
        assert!(would_vote(view(false, None), log(3, 10), &ask(log(3, 10))));
    }

    #[test]
    fn a_leader_refuses() {
        assert!(!would_vote(view(true, None), None, &ask(log(9, 99))));
    }

    #[test]
    fn a_candidate_with_less_log_is_refused() {
        assert!(!would_vote(view(false, None), log(3, 10), &ask(log(3, 9))));
        assert!(!would_vote(view(false, None), log(4, 2), &ask(log(3, 50))));
        assert!(would_vote(view(false, None), log(3, 10), &ask(log(4, 1))));
        assert!(!would_vote(view(false, None), log(1, 1), &ask(None)));
    }
}
