//! Who a gossip member is: its node name, the UDP address it gossips on, a bump that changes on
//! every restart or rejoin (so a new incarnation of a node wins over the one the cluster declared
//! down), and Consul's member tags (`role`, `dc`, `id`, `port`, `build`, ...), which travel with it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    pub name: String,
    pub addr: SocketAddr,
    pub bump: u16,
    pub tags: BTreeMap<String, String>,
}

impl Peer {
    /// A stand-in for whoever gossips at `addr`: what a join announces to before the member
    /// there is known (the member accepts an announce addressed to its address).
    pub fn at(addr: SocketAddr) -> Peer {
        Peer { name: String::new(), addr, bump: 0, tags: BTreeMap::new() }
    }

    pub fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map_or("", String::as_str)
    }

    /// Consul's `role` tag: `consul` on servers, `node` on client agents.
    pub fn is_server(&self) -> bool {
        self.tag("role") == "consul"
    }

    /// A server's Raft address: its gossip host with the server `port` from its tags.
    pub fn raft_addr(&self) -> Option<String> {
        let port: u16 = self.tag("port").parse().ok()?;
        Some(crate::agent::host_port(&self.addr.ip().to_string(), port))
    }
}

impl foca::Identity for Peer {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Peer { bump: self.bump.wrapping_add(1), ..self.clone() })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        // Bumps start from the clock at start and only grow (wrapping): the later one wins.
        self.bump.wrapping_sub(adversary.bump) < u16::MAX / 2
    }
}

/// The bump a fresh start begins from: seconds since the epoch, so that a restarted node's
/// identity wins over the one it had before.
pub fn initial_bump() -> u16 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    (secs % u64::from(u16::MAX)) as u16
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;

    #[test]
    fn a_renewed_identity_wins_over_the_one_it_replaces_even_across_the_wrap() {
        let addr: SocketAddr = "127.0.0.1:8301".parse().expect("addr");
        let old = Peer { bump: u16::MAX, ..Peer::at(addr) };
        let new = old.renew().expect("renews");
        assert_eq!(new.bump, 0);
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
    }
}
