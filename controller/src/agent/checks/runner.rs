//! Runs the checks registered on this agent (HTTP, TCP, UDP, gRPC, H2PING, script, Docker, alias,
//! OS service and TTL), and writes a status through Raft only when it changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::probe::Prober;
use crate::catalog::{Catalog, CheckKind, CheckSpec, CheckStatus, Command, Table, WatchKey};
use crate::cluster::Cluster;

/// Cuts output to `max` bytes on a character boundary.
pub fn truncate_output(mut output: String, max: usize) -> String {
    if output.len() > max {
        let mut cut = max;
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        output.truncate(cut);
    }
    output
}

struct Running {
    spec: CheckSpec,
    task: JoinHandle<()>,
}

pub struct CheckRunner {
    node: String,
    running: Mutex<HashMap<String, Running>>,
    ttl_touch: Mutex<HashMap<String, Arc<Notify>>>,
    last_output_sync: Mutex<HashMap<String, std::time::Instant>>,
    prober: Prober,
}

const OUTPUT_SYNC_INTERVAL: Duration = Duration::from_secs(300);

impl CheckRunner {
    pub fn new(node: String, catalog: Arc<Catalog>) -> Result<Arc<CheckRunner>, reqwest::Error> {
        Ok(Arc::new(CheckRunner {
            prober: Prober::new(node.clone(), catalog)?,
            node,
            running: Mutex::new(HashMap::new()),
            ttl_touch: Mutex::new(HashMap::new()),
            last_output_sync: Mutex::new(HashMap::new()),
        }))
    }

    /// Stops every check task (the runner's own loop is stopped by its caller).
    pub fn stop_all(&self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for (_, r) in running.drain() {
            r.task.abort();
        }
    }

    /// A TTL check got a status from its application: restart its clock.
    pub fn ttl_touched(&self, check_id: &str) {
        if let Some(n) = self.ttl_touch.lock().unwrap_or_else(|p| p.into_inner()).get(check_id) {
            n.notify_one();
        }
    }

    /// Keeps one task per check of this node, following the catalog.
    pub async fn run(self: Arc<Self>, cluster: Arc<dyn Cluster>) {
        loop {
            let mut sub = cluster.catalog().hub().subscribe(&WatchKey::Tables(vec![Table::Checks]));
            let wanted: HashMap<String, CheckSpec> = cluster.catalog().read(|s| {
                s.node_checks(&self.node)
                    .into_iter()
                    .filter(|c| c.spec.kind != CheckKind::Recorded && !c.spec.external)
                    .map(|c| (c.id.clone(), c.spec.clone()))
                    .collect()
            });
            self.reconcile(&cluster, wanted);
            sub.changed().await;
        }
    }

    fn reconcile(self: &Arc<Self>, cluster: &Arc<dyn Cluster>, wanted: HashMap<String, CheckSpec>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|id, r| {
            let keep = wanted.get(id) == Some(&r.spec);
            if !keep {
                r.task.abort();
                self.ttl_touch.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
            }
            keep
        });
        for (id, spec) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let task = tokio::spawn(self.clone().check_loop(cluster.clone(), id.clone(), spec.clone()));
            running.insert(id, Running { spec, task });
        }
    }

    async fn check_loop(self: Arc<Self>, cluster: Arc<dyn Cluster>, id: String, spec: CheckSpec) {
        if let CheckKind::Ttl { ttl_ms } = spec.kind {
            let touch = Arc::new(Notify::new());
            self.ttl_touch.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), touch.clone());
            loop {
                let expired =
                    tokio::time::timeout(Duration::from_millis(ttl_ms), touch.notified()).await.is_err();
                if expired {
                    self.report(&*cluster, &id, CheckStatus::Critical, "TTL expired".into(), &spec).await;
                    touch.notified().await;
                }
            }
        }
        if let CheckKind::Alias { .. } = spec.kind {
            // An alias follows the checks it mirrors: it looks again whenever they change.
            loop {
                let mut changed = cluster
                    .catalog()
                    .hub()
                    .subscribe(&WatchKey::Tables(vec![Table::Checks, Table::Services]));
                let (status, output) = self.prober.probe(&spec).await;
                self.report(&*cluster, &id, status, output, &spec).await;
                changed.changed().await;
            }
        }
        let interval = Duration::from_millis(spec.interval_ms.max(100));
        let mut guard = super::flap::FlapGuard::default();
        loop {
            let (seen, output) = self.prober.probe(&spec).await;
            if let Some(status) = guard.observe(&spec, seen) {
                self.report(&*cluster, &id, status, output, &spec).await;
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Proposes a status change at once; a changed output alone at most every
    /// `OUTPUT_SYNC_INTERVAL` (as Consul's `check_update_interval`), so chatty bodies do not
    /// fill the Raft log.
    async fn report(
        &self,
        cluster: &dyn Cluster,
        id: &str,
        status: CheckStatus,
        output: String,
        spec: &CheckSpec,
    ) {
        let output = truncate_output(output, spec.output_max_size.max(1) as usize);
        let (status_same, output_same) = cluster.catalog().read(|s| {
            s.check(&self.node, id).map_or((true, true), |c| (c.status == status, c.output == output))
        });
        let key = id.to_string();
        let output_due = {
            let last = self.last_output_sync.lock().unwrap_or_else(|p| p.into_inner());
            last.get(&key).is_none_or(|t| t.elapsed() >= OUTPUT_SYNC_INTERVAL)
        };
        if status_same && (output_same || !output_due) {
            return;
        }
        self.last_output_sync
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, std::time::Instant::now());
        let cmd = Command::UpdateCheck { node: self.node.clone(), check_id: id.to_string(), status, output };
        if let Err(e) = cluster.write(cmd).await {
            tracing::warn!(check = id, error = %e, "could not record check status; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_output;

    #[test]
    fn output_is_cut_on_a_char_boundary() {
        assert_eq!(truncate_output("héllo".into(), 2), "h");
        assert_eq!(truncate_output("abc".into(), 10), "abc");
    }
}
