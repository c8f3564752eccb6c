//! Removes services of this agent's node whose check has been critical for longer than its
//! `DeregisterCriticalServiceAfter`, as Consul's agent does (but on a precise timer, not a 30 s
//! sweep). This is what turns the lease check of a dead sidecar into a removed instance.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::catalog::{CheckStatus, Command, Table, WatchKey};
use crate::raft::ClusterNode;

/// A critical check that carries a deregistration deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reapable {
    check_id: String,
    service_id: String,
    after: Duration,
}

/// What is due now and when the next deadline falls, given when each check was first seen critical.
fn due_services(
    reapable: &[Reapable],
    critical_since: &mut HashMap<String, Instant>,
    now: Instant,
) -> (Vec<String>, Option<Instant>) {
    critical_since.retain(|id, _| reapable.iter().any(|r| &r.check_id == id));
    let mut due: Vec<String> = Vec::new();
    let mut next: Option<Instant> = None;
    for r in reapable {
        let since = *critical_since.entry(r.check_id.clone()).or_insert(now);
        let deadline = since + r.after;
        if deadline <= now {
            if !due.contains(&r.service_id) {
                due.push(r.service_id.clone());
            }
        } else {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
    }
    (due, next)
}

pub async fn reap_critical_services(node: String, cluster: Arc<ClusterNode>) {
    let mut critical_since: HashMap<String, Instant> = HashMap::new();
    loop {
        let mut sub = cluster.catalog.hub().subscribe(&WatchKey::Tables(vec![Table::Checks]));
        let reapable: Vec<Reapable> = cluster.catalog.read(|s| {
            s.node_checks(&node)
                .into_iter()
                .filter(|c| {
                    c.status == CheckStatus::Critical
                        && c.spec.deregister_critical_after_ms > 0
                        && !c.service_id.is_empty()
                })
                .map(|c| Reapable {
                    check_id: c.id.clone(),
                    service_id: c.service_id.clone(),
                    after: Duration::from_millis(c.spec.deregister_critical_after_ms),
                })
                .collect()
        });
        let (due, next) = due_services(&reapable, &mut critical_since, Instant::now());
        for service_id in due {
            tracing::info!(service = %service_id, "deregistering service critical past DeregisterCriticalServiceAfter");
            let cmd = Command::DeregisterService { node: node.clone(), service_id: service_id.clone() };
            if let Err(e) = cluster.write(cmd).await {
                tracing::warn!(service = %service_id, error = %e, "could not reap service; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        match next {
            Some(deadline) => {
                tokio::select! {
                    _ = sub.changed() => {}
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
            None => sub.changed().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(check: &str, service: &str, secs: u64) -> Reapable {
        Reapable { check_id: check.into(), service_id: service.into(), after: Duration::from_secs(secs) }
    }

    #[test]
    fn deadline_counts_from_first_sighting_and_resets_when_the_check_recovers() {
        let t0 = Instant::now();
        let mut since = HashMap::new();
        let (due, next) = due_services(&[r("c1", "s1", 10)], &mut since, t0);
        assert!(due.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(10)));
        let (due, _) = due_services(&[r("c1", "s1", 10)], &mut since, t0 + Duration::from_secs(10));
        assert_eq!(due, vec!["s1".to_string()]);
        // Passing again (not in the list) forgets the clock; critical again starts over.
        due_services(&[], &mut since, t0 + Duration::from_secs(11));
        let (due, next) = due_services(&[r("c1", "s1", 10)], &mut since, t0 + Duration::from_secs(12));
        assert!(due.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(22)));
    }

    #[test]
    fn two_checks_of_one_service_reap_it_once_and_the_earliest_deadline_wakes() {
        let t0 = Instant::now();
        let mut since = HashMap::new();
        let (due, next) = due_services(&[r("a", "s", 5), r("b", "s", 3), r("c", "t", 9)], &mut since, t0);
        assert!(due.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(3)));
        let (due, _) = due_services(
            &[r("a", "s", 5), r("b", "s", 3), r("c", "t", 9)],
            &mut since,
            t0 + Duration::from_secs(6),
        );
        assert_eq!(due, vec!["s".to_string()]);
    }
}
