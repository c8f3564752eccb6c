//! The leader's side of sessions: TTL timers and invalidation.
//!
//! A session is invalidated twice its TTL after its last renewal, as Consul's leader does
//! (`SessionTTLMultiplier`): clients such as Patroni size their own timeouts by that (it asks
//! for half its TTL and fences itself before the doubled deadline).
//!
//! TTL deadlines live only in the leader's memory, as in Consul. A session's clock restarts when
//! its `renew_index` moves (created or renewed through Raft); a new leader gives every session a
//! full TTL from the moment it took over, so a leader change can lengthen a session but never
//! shorten it. Expiry and invalidation are proposed through Raft: `SessionExpire` carries the
//! renewal it saw, so a renewal that wins the race keeps the session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::leadership::Leadership;
use crate::catalog::{Command, Table, WatchKey};
use crate::raft::ClusterNode;

/// Consul's `SessionTTLMultiplier`: a session lives this many TTLs after its last renewal.
const TTL_MULTIPLIER: u32 = 2;

/// What the monitor knows of one session with a TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timer {
    renew_index: u64,
    deadline: Instant,
}

/// One session as the monitor reads it from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    id: String,
    renew_index: u64,
    ttl: Duration,
    /// Why it must be invalidated now (node or bound check gone or critical).
    problem: Option<String>,
}

/// What to propose: sessions to invalidate, sessions whose TTL ran out (with the renewal seen),
/// and when the next deadline falls.
#[derive(Debug, Default, PartialEq, Eq)]
struct Due {
    invalid: Vec<String>,
    expired: Vec<(String, u64)>,
    next: Option<Instant>,
}

fn due(sessions: &[Seen], timers: &mut HashMap<String, Timer>, now: Instant) -> Due {
    timers.retain(|id, _| sessions.iter().any(|s| &s.id == id && !s.ttl.is_zero()));
    let mut out = Due::default();
    for s in sessions {
        if s.problem.is_some() {
            out.invalid.push(s.id.clone());
            continue;
        }
        if s.ttl.is_zero() {
            continue;
        }
        let lifetime = s.ttl * TTL_MULTIPLIER;
        let timer = timers
            .entry(s.id.clone())
            .or_insert(Timer { renew_index: s.renew_index, deadline: now + lifetime });
        if timer.renew_index != s.renew_index {
            *timer = Timer { renew_index: s.renew_index, deadline: now + lifetime };
        }
        if timer.deadline <= now {
            out.expired.push((s.id.clone(), s.renew_index));
        } else {
            out.next = Some(out.next.map_or(timer.deadline, |n| n.min(timer.deadline)));
        }
    }
    out
}

pub async fn run(cluster: Arc<ClusterNode>) {
    let mut timers: HashMap<String, Timer> = HashMap::new();
    let mut leadership = Leadership::default();
    loop {
        if leadership.lead(&cluster).await {
            // Won or re-won leadership: whoever leads now grants full TTLs.
            timers.clear();
        }
        let mut sub = cluster.catalog.hub().subscribe(&WatchKey::Tables(vec![
            Table::Sessions,
            Table::Checks,
            Table::Nodes,
        ]));
        let seen: Vec<Seen> = cluster.catalog.read(|s| {
            s.sessions()
                .map(|r| Seen {
                    id: r.spec.id.clone(),
                    renew_index: r.renew_index,
                    ttl: Duration::from_millis(r.spec.ttl_ms),
                    problem: s.session_problem(&r.spec),
                })
                .collect()
        });
        let due = due(&seen, &mut timers, Instant::now());
        let mut failed = false;
        for id in &due.invalid {
            tracing::info!(session = %id, "invalidating session: its node or a bound check is gone or critical");
            failed |= cluster.write(Command::SessionDestroy { id: id.clone(), now_ms: 0 }).await.is_err();
        }
        for (id, renew_index) in &due.expired {
            tracing::info!(session = %id, "session TTL expired");
            let cmd = Command::SessionExpire { id: id.clone(), renew_index: *renew_index, now_ms: 0 };
            failed |= cluster.write(cmd).await.is_err();
        }
        if failed {
            tracing::warn!("could not invalidate a session; will retry");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        leadership.wait(&cluster, &mut sub, due.next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, renew_index: u64, ttl_s: u64) -> Seen {
        Seen { id: id.into(), renew_index, ttl: Duration::from_secs(ttl_s), problem: None }
    }

    #[test]
    fn a_session_expires_two_ttls_after_its_last_renewal_seen() {
        let t0 = Instant::now();
        let mut timers = HashMap::new();
        let first = due(&[seen("a", 5, 10)], &mut timers, t0);
        assert_eq!(first, Due { next: Some(t0 + Duration::from_secs(20)), ..Due::default() });

        // renewed at t0+8: the clock restarts
        let renewed = due(&[seen("a", 9, 10)], &mut timers, t0 + Duration::from_secs(8));
        assert_eq!(renewed.next, Some(t0 + Duration::from_secs(28)));
        assert!(due(&[seen("a", 9, 10)], &mut timers, t0 + Duration::from_secs(27)).expired.is_empty());
        let late = due(&[seen("a", 9, 10)], &mut timers, t0 + Duration::from_secs(28));
        assert_eq!(late.expired, vec![("a".to_string(), 9)]);
    }

    #[test]
    fn sessions_without_ttl_never_expire_and_problems_invalidate_at_once() {
        let t0 = Instant::now();
        let mut timers = HashMap::new();
        let broken =
            Seen { problem: Some("Check 'serfHealth' is in critical state".into()), ..seen("b", 1, 10) };
        let out = due(&[seen("forever", 1, 0), broken], &mut timers, t0 + Duration::from_secs(3600));
        assert_eq!(out, Due { invalid: vec!["b".into()], expired: vec![], next: None });
        assert!(timers.is_empty());
    }

    #[test]
    fn forgotten_sessions_drop_their_timers() {
        let t0 = Instant::now();
        let mut timers = HashMap::new();
        due(&[seen("a", 1, 10), seen("b", 2, 10)], &mut timers, t0);
        due(&[seen("b", 2, 10)], &mut timers, t0);
        assert_eq!(timers.keys().collect::<Vec<_>>(), vec!["b"]);
    }
}
