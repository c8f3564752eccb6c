//! Who has which gossip key: every member reports its installed keys by gossip (after each
//! change, and when members join); `/v1/operator/keyring` counts them over the alive members,
//! and a keyring change waits until every alive member reports it done.

use std::collections::{BTreeMap, HashMap};

use super::codec::KeyOp;
use super::members::{MemberState, Status};

/// The latest report of each member: (its sequence number, its keys with the primary first).
#[derive(Debug, Default)]
pub struct KeyReports {
    latest: HashMap<String, (u64, Vec<String>)>,
}

impl KeyReports {
    /// Keeps `keys` as `name`'s report unless a newer one is already kept; true if kept.
    pub fn record(&mut self, name: &str, seq: u64, keys: Vec<String>) -> bool {
        match self.latest.get(name) {
            Some((known, _)) if *known >= seq => false,
            _ => {
                self.latest.insert(name.to_string(), (seq, keys));
                true
            }
        }
    }

    pub fn keys_of(&self, name: &str) -> Option<&[String]> {
        self.latest.get(name).map(|(_, keys)| keys.as_slice())
    }

    /// Counts keys over the alive members (servers only for the WAN view).
    pub fn view(&self, members: &[MemberState], only_servers: bool) -> KeyringView {
        let mut view = KeyringView::default();
        for m in members.iter().filter(|m| m.status == Status::Alive && (!only_servers || m.peer.is_server()))
        {
            view.num_nodes += 1;
            let Some(keys) = self.keys_of(&m.peer.name) else { continue };
            for key in keys {
                *view.keys.entry(key.clone()).or_default() += 1;
            }
            if let Some(primary) = keys.first() {
                *view.primary.entry(primary.clone()).or_default() += 1;
            }
        }
        view
    }

    /// The alive members whose latest report does not show `op` of `key` done yet.
    pub fn pending(&self, members: &[MemberState], op: KeyOp, key: &str) -> Vec<String> {
        members
            .iter()
            .filter(|m| m.status == Status::Alive)
            .filter(|m| !self.keys_of(&m.peer.name).is_some_and(|keys| done(op, key, keys)))
            .map(|m| m.peer.name.clone())
            .collect()
    }
}

/// Whether a member with `keys` has carried out `op` of `key`.
pub fn done(op: KeyOp, key: &str, keys: &[String]) -> bool {
    match op {
        KeyOp::Install => keys.iter().any(|k| k == key),
        KeyOp::Use => keys.first().is_some_and(|k| k == key),
        KeyOp::Remove => !keys.iter().any(|k| k == key),
    }
}

/// One pool's keys: how many alive members have each key installed and as primary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyringView {
    pub keys: BTreeMap<String, usize>,
    pub primary: BTreeMap<String, usize>,
    pub num_nodes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::Peer;

    fn member(name: &str, status: Status) -> MemberState {
        let mut peer = Peer::at("127.0.0.1:8301".parse().expect("addr"));
        peer.name = name.into();
        MemberState { peer, status, since: std::time::Instant::now() }
    }

    #[test]
    fn counts_alive_members_and_waits_for_the_slow_ones() {
        let members = [member("a", Status::Alive), member("b", Status::Alive), member("c", Status::Failed)];
        let mut reports = KeyReports::default();
        assert!(reports.record("a", 2, vec!["k1".into(), "k2".into()]));
        assert!(!reports.record("a", 1, vec!["old".into()]), "an older report loses");
        reports.record("b", 1, vec!["k1".into()]);
        reports.record("c", 1, vec!["k9".into()]);
        let view = reports.view(&members, false);
        assert_eq!(view.num_nodes, 2, "the failed member is not counted");
        assert_eq!(view.keys, BTreeMap::from([("k1".into(), 2), ("k2".into(), 1)]));
        assert_eq!(view.primary, BTreeMap::from([("k1".into(), 2)]));
        assert_eq!(reports.pending(&members, KeyOp::Install, "k2"), ["b"]);
        assert!(reports.pending(&members, KeyOp::Remove, "k9").is_empty());
        assert_eq!(reports.pending(&members, KeyOp::Use, "k2"), ["a", "b"]);
    }
}
