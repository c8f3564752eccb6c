//! The leader removes services whose check has been critical for longer than its
//! `DeregisterCriticalServiceAfter`, on every node, on a precise timer (Consul's agents sweep
//! their own node every 30 s, so a dead agent's services are never reaped); a client agent also
//! reaps its own, as Consul's does. With owner leases
//! this is what turns a dead sidecar's or a dead agent's instances into removed ones. Clocks live
//! in the leader's memory; a new leader starts them afresh, so a failover can delay a removal
//! but never hasten it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::leadership::{Leadership, change_or_deadline};
use crate::catalog::{CheckStatus, Command, Table, WatchKey};
use crate::cluster::Cluster;
use crate::raft::ClusterNode;

/// A critical check that carries a deregistration deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reapable {
    node: String,
    check_id: String,
    service_id: String,
    after: Duration,
}

type CheckKey = (String, String);

/// What is due now (node, service) and when the next deadline falls, given when each check was
/// first seen critical.
fn due_services(
    reapable: &[Reapable],
    critical_since: &mut HashMap<CheckKey, Instant>,
    now: Instant,
) -> (Vec<(String, String)>, Option<Instant>) {
    critical_since.retain(|(node, id), _| reapable.iter().any(|r| &r.node == node && &r.check_id == id));
    let mut due: Vec<(String, String)> = Vec::new();
    let mut next: Option<Instant> = None;
    for r in reapable {
        let since = *critical_since.entry((r.node.clone(), r.check_id.clone())).or_insert(now);
        let deadline = since + r.after;
        let service = (r.node.clone(), r.service_id.clone());
        if deadline <= now {
            if !due.contains(&service) {
                due.push(service);
            }
        } else {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
    }
    (due, next)
}

/// The critical checks with a deregistration deadline, in `cluster`'s catalog.
fn reapable(cluster: &dyn Cluster) -> Vec<Reapable> {
    cluster.catalog().read(|s| {
        s.checks_in_state(Some(CheckStatus::Critical))
            .into_iter()
            .filter(|c| c.spec.deregister_critical_after_ms > 0 && !c.service_id.is_empty())
            .map(|c| Reapable {
                node: c.node.clone(),
                check_id: c.id.clone(),
                service_id: c.service_id.clone(),
                after: Duration::from_millis(c.spec.deregister_critical_after_ms),
            })
            .collect()
    })
}

/// Deregisters what is due; returns when the next deadline falls.
async fn reap_due(cluster: &dyn Cluster, critical_since: &mut HashMap<CheckKey, Instant>) -> Option<Instant> {
    let (due, next) = due_services(&reapable(cluster), critical_since, Instant::now());
    for (node, service_id) in due {
        tracing::info!(%node, service = %service_id, "deregistering service critical past DeregisterCriticalServiceAfter");
        let cmd = Command::DeregisterService { node: node.clone(), service_id: service_id.clone() };
        if let Err(e) = cluster.write(cmd).await {
            tracing::warn!(service = %service_id, error = %e, "could not reap service; will retry");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    next
}

/// On servers: the leader reaps every node's services.
pub async fn reap_critical_services(cluster: Arc<ClusterNode>) {
    let mut critical_since: HashMap<CheckKey, Instant> = HashMap::new();
    let mut leadership = Leadership::default();
    loop {
        if leadership.lead(&cluster).await {
            critical_since.clear();
        }
        let mut sub = cluster.catalog.hub().subscribe(&WatchKey::Tables(vec![Table::Checks]));
        let next = reap_due(cluster.as_ref(), &mut critical_since).await;
        leadership.wait(&cluster, &mut sub, next).await;
    }
}

/// On a client agent: it reaps its own services, as Consul's agent does (otherwise its
/// anti-entropy would put back what the leader reaped).
pub async fn reap_own_services(cluster: Arc<dyn Cluster>) {
    let mut critical_since: HashMap<CheckKey, Instant> = HashMap::new();
    loop {
        let mut sub = cluster.catalog().hub().subscribe(&WatchKey::Tables(vec![Table::Checks]));
        let next = reap_due(cluster.as_ref(), &mut critical_since).await;
        change_or_deadline(&mut sub, next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(node: &str, check: &str, service: &str, secs: u64) -> Reapable {
        Reapable {
            node: node.into(),
            check_id: check.into(),
            service_id: service.into(),
            after: Duration::from_secs(secs),
        }
    }

    fn svc(node: &str, id: &str) -> (String, String) {
        (node.into(), id.into())
    }

    #[test]
    fn deadline_counts_from_first_sighting_and_resets_when_the_check_recovers() {
        let t0 = Instant::now();
        let mut since = HashMap::new();
        let (due, next) = due_services(&[r("n", "c1", "s1", 10)], &mut since, t0);
        assert!(due.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(10)));
        let (due, _) = due_services(&[r("n", "c1", "s1", 10)], &mut since, t0 + Duration::from_secs(10));
        assert_eq!(due, vec![svc("n", "s1")]);
        // Passing again (not in the list) forgets the clock; critical again starts over.
        due_services(&[], &mut since, t0 + Duration::from_secs(11));
        let (due, next) = due_services(&[r("n", "c1", "s1", 10)], &mut since, t0 + Duration::from_secs(12));
        assert!(due.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(22)));
    }

    #[test]
    fn two_checks_of_one_service_reap_it_once_and_the_earliest_deadline_wakes() {
        let t0 = Instant::now();
        let mut since = HashMap::new();
        let all = [r("n", "a", "s", 5), r("n", "b", "s", 3), r("n", "c", "t", 9)];
        let (due, next) = due_services(&all, &mut since, t0);
        assert!(due.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(3)));
        let (due, _) = due_services(&all, &mut since, t0 + Duration::from_secs(6));
        assert_eq!(due, vec![svc("n", "s")]);
    }

    #[test]
    fn same_check_ids_on_two_nodes_keep_separate_clocks() {
        let t0 = Instant::now();
        let mut since = HashMap::new();
        due_services(&[r("a", "c", "s", 5)], &mut since, t0);
        let both = [r("a", "c", "s", 5), r("b", "c", "s", 5)];
        let (due, next) = due_services(&both, &mut since, t0 + Duration::from_secs(5));
        assert_eq!(due, vec![svc("a", "s")]);
        assert_eq!(next, Some(t0 + Duration::from_secs(10)));
    }
}
