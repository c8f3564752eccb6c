//! Every member this agent has heard of, with serf's statuses: alive, leaving (this agent, while
//! it leaves), left (went down after saying it leaves), failed (went down without a word).

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use super::identity::Peer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Alive,
    Leaving,
    Left,
    Failed,
}

impl Status {
    /// serf's MemberStatus numbers, as `/v1/agent/members` shows them.
    pub fn code(self) -> u8 {
        match self {
            Status::Alive => 1,
            Status::Leaving => 2,
            Status::Left => 3,
            Status::Failed => 4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MemberState {
    pub peer: Peer,
    pub status: Status,
    pub since: Instant,
}

#[derive(Debug, Default)]
pub struct MemberTable {
    members: BTreeMap<String, MemberState>,
    /// (name, bump) of members that said they are leaving.
    leaving: HashSet<(String, u16)>,
}

impl MemberTable {
    pub fn new(me: Peer) -> MemberTable {
        let mut table = MemberTable::default();
        table.up(me);
        table
    }

    pub fn all(&self) -> impl Iterator<Item = &MemberState> {
        self.members.values()
    }

    pub fn get(&self, name: &str) -> Option<&MemberState> {
        self.members.get(name)
    }

    /// A member is alive (again, perhaps under a renewed identity). Returns whether that changed
    /// anything.
    pub fn up(&mut self, peer: Peer) -> bool {
        if let Some(known) = self.members.get(&peer.name)
            && known.status == Status::Alive
            && known.peer == peer
        {
            return false;
        }
        self.members
            .insert(peer.name.clone(), MemberState { peer, status: Status::Alive, since: Instant::now() });
        true
    }

    /// A member went down: left if it said so, failed otherwise. An older identity of a member
    /// that already came back under a newer one changes nothing.
    pub fn down(&mut self, peer: &Peer) -> bool {
        let Some(known) = self.members.get_mut(&peer.name) else { return false };
        if known.peer.bump != peer.bump {
            return false;
        }
        let status = if self.leaving.contains(&(peer.name.clone(), peer.bump)) {
            Status::Left
        } else {
            Status::Failed
        };
        if known.status == status {
            return false;
        }
        known.status = status;
        known.since = Instant::now();
        true
    }

    /// A member announced that it leaves.
    pub fn leaving(&mut self, name: &str, bump: u16) -> bool {
        self.leaving.insert((name.to_string(), bump));
        match self.members.get_mut(name) {
            // It went down before the word arrived: it left after all.
            Some(m) if m.peer.bump == bump && m.status == Status::Failed => {
                m.status = Status::Left;
                true
            }
            Some(m) if m.peer.bump == bump && m.status == Status::Alive => {
                m.status = Status::Leaving;
                m.since = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// `census force-leave`: a failed member is marked left (and `prune` forgets it).
    pub fn force_leave(&mut self, name: &str, prune: bool) -> bool {
        match self.members.get_mut(name) {
            Some(m) if prune && m.status != Status::Alive => {
                self.members.remove(name);
                true
            }
            Some(m) if m.status == Status::Failed => {
                m.status = Status::Left;
                true
            }
            _ => false,
        }
    }

    /// Forgets members that have been left or failed since before `cutoff`.
    pub fn reap(&mut self, cutoff: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| matches!(m.status, Status::Left | Status::Failed) && m.since < cutoff)
            .map(|m| m.peer.name.clone())
            .collect();
        for name in &gone {
            self.members.remove(name);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, bump: u16) -> Peer {
        Peer { name: name.into(), bump, ..Peer::at("127.0.0.1:1".parse().expect("addr")) }
    }

    #[test]
    fn down_without_a_word_is_failed_and_after_one_is_left() {
        let mut t = MemberTable::new(peer("me", 1));
        t.up(peer("a", 1));
        t.up(peer("b", 1));
        assert!(t.down(&peer("a", 1)));
        assert_eq!(t.get("a").map(|m| m.status), Some(Status::Failed));
        assert!(t.leaving("b", 1));
        assert_eq!(t.get("b").map(|m| m.status), Some(Status::Leaving));
        t.down(&peer("b", 1));
        assert_eq!(t.get("b").map(|m| m.status), Some(Status::Left));
    }

    #[test]
    fn a_renewed_identity_brings_a_failed_member_back_and_its_old_one_is_ignored() {
        let mut t = MemberTable::new(peer("me", 1));
        t.up(peer("a", 1));
        t.down(&peer("a", 1));
        assert!(t.up(peer("a", 2)));
        assert!(!t.down(&peer("a", 1)), "the old identity's death is old news");
        assert_eq!(t.get("a").map(|m| m.status), Some(Status::Alive));
    }

    #[test]
    fn the_leave_word_arriving_after_the_death_still_makes_it_left() {
        let mut t = MemberTable::new(peer("me", 1));
        t.up(peer("a", 1));
        t.down(&peer("a", 1));
        assert!(t.leaving("a", 1));
        assert_eq!(t.get("a").map(|m| m.status), Some(Status::Left));
    }

    #[test]
    fn reaping_forgets_only_members_down_since_before_the_cutoff() {
        let mut t = MemberTable::new(peer("me", 1));
        t.up(peer("a", 1));
        t.down(&peer("a", 1));
        let before = Instant::now() - std::time::Duration::from_secs(1);
        assert!(t.reap(before).is_empty());
        assert_eq!(t.reap(Instant::now() + std::time::Duration::from_secs(1)), vec!["a".to_string()]);
        assert!(t.get("me").is_some());
    }
}
