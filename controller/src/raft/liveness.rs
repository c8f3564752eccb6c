//! When the leader last heard from each agent (`/raft/alive`), for owner leases. Kept in memory
//! only: a new leader starts from nothing and grants every agent a full lease.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub struct Liveness {
    seen: Mutex<HashMap<String, Instant>>,
}

impl Liveness {
    pub fn saw(&self, node: &str) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(node.to_string(), Instant::now());
    }

    pub fn last_seen(&self, node: &str) -> Option<Instant> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(node).copied()
    }
}
