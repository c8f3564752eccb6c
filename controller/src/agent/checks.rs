//! Runs the HTTP, TCP, gRPC, script and TTL checks of the services registered on this agent, and writes a
//! status through Raft only when it changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::catalog::{CheckKind, CheckSpec, CheckStatus, Command, Table, WatchKey};
use crate::raft::ClusterNode;

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
    http: reqwest::Client,
    grpc: reqwest::Client,
}

const OUTPUT_SYNC_INTERVAL: Duration = Duration::from_secs(300);

/// Follows redirects only to the same host and port (a check must not be bounced elsewhere).
fn same_host_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first =
            attempt.previous().first().map(|u| (u.host_str().map(str::to_string), u.port_or_known_default()));
        let next = (attempt.url().host_str().map(str::to_string), attempt.url().port_or_known_default());
        if attempt.previous().len() > 10 || first.as_ref() != Some(&next) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

impl CheckRunner {
    pub fn new(node: String) -> Result<Arc<CheckRunner>, reqwest::Error> {
        let http = reqwest::Client::builder().redirect(same_host_redirects()).build()?;
        let grpc = reqwest::Client::builder().http2_prior_knowledge().build()?;
        Ok(Arc::new(CheckRunner {
            node,
            running: Mutex::new(HashMap::new()),
            ttl_touch: Mutex::new(HashMap::new()),
            last_output_sync: Mutex::new(HashMap::new()),
            http,
            grpc,
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
    pub async fn run(self: Arc<Self>, cluster: Arc<ClusterNode>) {
        loop {
            let mut sub = cluster.catalog.hub().subscribe(&WatchKey::Tables(vec![Table::Checks]));
            let wanted: HashMap<String, CheckSpec> = cluster.catalog.read(|s| {
                s.node_checks(&self.node)
                    .into_iter()
                    .filter(|c| c.spec.kind != CheckKind::Recorded)
                    .map(|c| (c.id.clone(), c.spec.clone()))
                    .collect()
            });
            self.reconcile(&cluster, wanted);
            sub.changed().await;
        }
    }

    fn reconcile(self: &Arc<Self>, cluster: &Arc<ClusterNode>, wanted: HashMap<String, CheckSpec>) {
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

    async fn check_loop(self: Arc<Self>, cluster: Arc<ClusterNode>, id: String, spec: CheckSpec) {
        if let CheckKind::Ttl { ttl_ms } = spec.kind {
            let touch = Arc::new(Notify::new());
            self.ttl_touch.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), touch.clone());
            loop {
                let expired =
                    tokio::time::timeout(Duration::from_millis(ttl_ms), touch.notified()).await.is_err();
                if expired {
                    self.report(&cluster, &id, CheckStatus::Critical, "TTL expired".into(), &spec).await;
                    touch.notified().await;
                }
            }
        }
        let interval = Duration::from_millis(spec.interval_ms.max(100));
        let mut guard = super::flap::FlapGuard::default();
        loop {
            let (seen, output) = self.probe(&spec).await;
            if let Some(status) = guard.observe(&spec, seen) {
                self.report(&cluster, &id, status, output, &spec).await;
            }
            tokio::time::sleep(interval).await;
        }
    }

    async fn probe(&self, spec: &CheckSpec) -> (CheckStatus, String) {
        let timeout = Duration::from_millis(spec.timeout_ms.max(1));
        match &spec.kind {
            CheckKind::Http { url, method, header, body, .. } => {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
                let mut req = self.http.request(method.clone(), url).timeout(timeout);
                for (name, values) in header {
                    for v in values {
                        req = req.header(name.as_str(), v.as_str());
                    }
                }
                if !body.is_empty() {
                    req = req.body(body.clone());
                }
                match req.send().await {
                    Ok(resp) => {
                        let code = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        let status = if code.is_success() {
                            CheckStatus::Passing
                        } else if code.as_u16() == 429 {
                            CheckStatus::Warning
                        } else {
                            CheckStatus::Critical
                        };
                        (status, format!("HTTP {method} {url}: {code} Output: {text}"))
                    }
                    Err(e) => (CheckStatus::Critical, format!("HTTP {method} {url}: {e}")),
                }
            }
            CheckKind::Tcp { address } => {
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address.as_str())).await {
                    Ok(Ok(_)) => (CheckStatus::Passing, format!("TCP connect {address}: Success")),
                    Ok(Err(e)) => (CheckStatus::Critical, format!("dial tcp {address}: {e}")),
                    Err(_) => (CheckStatus::Critical, format!("dial tcp {address}: i/o timeout")),
                }
            }
            CheckKind::Grpc { address, service } => {
                let (serving, output) =
                    census_client::grpc_health::check(&self.grpc, address, service, timeout).await;
                (if serving { CheckStatus::Passing } else { CheckStatus::Critical }, output)
            }
            CheckKind::Script { args } => super::script_check::run(args, timeout).await,
            CheckKind::Ttl { .. } | CheckKind::Recorded => (CheckStatus::Critical, String::new()),
        }
    }

    /// Proposes a status change at once; a changed output alone at most every
    /// `OUTPUT_SYNC_INTERVAL` (as Consul's `check_update_interval`), so chatty bodies do not
    /// fill the Raft log.
    async fn report(
        &self,
        cluster: &ClusterNode,
        id: &str,
        status: CheckStatus,
        output: String,
        spec: &CheckSpec,
    ) {
        let output = truncate_output(output, spec.output_max_size.max(1) as usize);
        let (status_same, output_same) = cluster.catalog.read(|s| {
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
