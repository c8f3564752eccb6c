//! What the leader-only tasks (session TTLs, owner leases, the reaper) share: they run only while
//! this server leads, restart their clocks whenever leadership is won anew (a new leader grants
//! full intervals, so a failover can delay an expiry but never hasten it), and sleep until the
//! catalog changes, their next deadline falls, or leadership changes.

use tokio::time::Instant;

use crate::catalog::Subscription;
use crate::raft::ClusterNode;

#[derive(Debug, Default)]
pub struct Leadership {
    led_term: Option<u64>,
}

impl Leadership {
    /// Returns once this server leads: true when it is a term not seen before (clocks restart).
    pub async fn lead(&mut self, cluster: &ClusterNode) -> bool {
        let mut fresh = false;
        loop {
            let term = cluster.leading_term();
            if term != self.led_term {
                fresh = true;
                self.led_term = term;
            }
            if term.is_some() {
                return fresh;
            }
            cluster.leadership_changed(None).await;
        }
    }

    /// Sleeps until `sub` sees a change, `next` passes, or leadership changes.
    pub async fn wait(&self, cluster: &ClusterNode, sub: &mut Subscription, next: Option<Instant>) {
        tokio::select! {
            _ = change_or_deadline(sub, next) => {}
            _ = cluster.leadership_changed(self.led_term) => {}
        }
    }
}

/// Sleeps until `sub` sees a change or `next` passes (never, without a deadline).
pub async fn change_or_deadline(sub: &mut Subscription, next: Option<Instant>) {
    let deadline = async {
        match next {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = sub.changed() => {}
        _ = deadline => {}
    }
}
