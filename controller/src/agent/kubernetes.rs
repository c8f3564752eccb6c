//! `-platform kubernetes`: the operator's catalog port over this server's Raft cluster, and the
//! leader-only tasks it needs (the reconcilers, and the checks of the operator's node, which
//! only the leader runs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use census_operator::ownership::{NODE, SOURCE, SOURCE_META};
use census_operator::{CatalogPort, Instance, InstanceCheck, PortError, Probe, StoredInstance, StoredKey};

use super::checks::CheckRunner;
use super::config::KubernetesConfig;
use crate::catalog::{
    CatalogState, CheckKind, CheckRegistration, CheckSpec, CheckStatus, Command, CommandResult, NodeSpec,
    Registration, ServiceRecord, ServiceSpec, Table, WatchKey,
};
use crate::raft::{ClusterError, ClusterNode};

/// The operator's view of the catalog: reads from this server's state machine (current on the
/// leader), writes through Raft.
pub struct RaftCatalog {
    cluster: Arc<ClusterNode>,
    /// The catalog index `changed` last returned at.
    seen: AtomicU64,
}

impl RaftCatalog {
    pub fn new(cluster: Arc<ClusterNode>) -> RaftCatalog {
        RaftCatalog { cluster, seen: AtomicU64::new(0) }
    }

    async fn write(&self, cmd: Command) -> Result<u64, PortError> {
        match self.cluster.write(cmd).await {
            Ok((_, CommandResult::Rejected(why))) => Err(PortError::Rejected(why)),
            Ok((index, _)) => Ok(self.cluster.catalog.client_index_of(index)),
            Err(ClusterError::NoLeader) => Err(PortError::NotLeader),
            Err(e) => Err(PortError::Unavailable(e.to_string())),
        }
    }
}

fn ready_check_id(instance: &str) -> String {
    format!("service:{instance}:ready")
}

fn check_id(instance: &str) -> String {
    format!("service:{instance}")
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn check_spec(check: &InstanceCheck) -> CheckSpec {
    let kind = match &check.probe {
        Probe::Http { url } => CheckKind::Http {
            url: url.clone(),
            method: "GET".into(),
            header: BTreeMap::new(),
            body: String::new(),
            tls_skip_verify: false,
            tls_server_name: String::new(),
            disable_redirects: false,
        },
        Probe::Tcp { address } => CheckKind::Tcp { address: address.clone(), use_tls: false },
        Probe::Grpc { address, service } => {
            CheckKind::Grpc { address: address.clone(), service: service.clone(), use_tls: false }
        }
        Probe::Ttl { ttl } => CheckKind::Ttl { ttl_ms: ms(*ttl) },
    };
    CheckSpec {
        kind,
        interval_ms: ms(check.interval),
        timeout_ms: ms(check.timeout),
        deregister_critical_after_ms: check.deregister_after.map_or(0, ms),
        ..Default::default()
    }
}

fn instance_check(spec: &CheckSpec) -> Option<InstanceCheck> {
    let probe = match &spec.kind {
        CheckKind::Http { url, .. } => Probe::Http { url: url.clone() },
        CheckKind::Tcp { address, .. } => Probe::Tcp { address: address.clone() },
        CheckKind::Grpc { address, service, .. } => {
            Probe::Grpc { address: address.clone(), service: service.clone() }
        }
        CheckKind::Ttl { ttl_ms } => Probe::Ttl { ttl: Duration::from_millis(*ttl_ms) },
        CheckKind::Recorded
        | CheckKind::Script { .. }
        | CheckKind::Udp { .. }
        | CheckKind::H2Ping { .. }
        | CheckKind::Docker { .. }
        | CheckKind::Alias { .. }
        | CheckKind::OsService { .. } => return None,
    };
    Some(InstanceCheck {
        probe,
        interval: Duration::from_millis(spec.interval_ms),
        timeout: Duration::from_millis(spec.timeout_ms),
        deregister_after: (spec.deregister_critical_after_ms > 0)
            .then(|| Duration::from_millis(spec.deregister_critical_after_ms)),
    })
}

fn stored(s: &CatalogState, svc: &ServiceRecord) -> StoredInstance {
    let checks = s.checks_for(svc);
    let ready = checks.iter().find(|c| c.id == ready_check_id(&svc.id));
    let probe = checks.iter().find(|c| c.id == check_id(&svc.id));
    StoredInstance {
        instance: Instance {
            id: svc.id.clone(),
            service: svc.name.clone(),
            address: svc.address.clone(),
            port: svc.port,
            tags: svc.tags.clone(),
            meta: svc.meta.clone(),
            pod_ready: ready.map(|c| c.status == CheckStatus::Passing),
            check: probe.and_then(|c| instance_check(&c.spec)),
        },
        passing: checks.iter().all(|c| c.status == CheckStatus::Passing),
        modify_index: std::iter::once(svc.modify_index)
            .chain(checks.iter().map(|c| c.modify_index))
            .max()
            .unwrap_or(0),
    }
}

fn registration(instance: Instance) -> Registration {
    let mut checks = Vec::new();
    if let Some(ready) = instance.pod_ready {
        checks.push(CheckRegistration {
            id: ready_check_id(&instance.id),
            name: "Kubernetes readiness".into(),
            status: Some(if ready { CheckStatus::Passing } else { CheckStatus::Critical }),
            notes: String::new(),
            output: if ready { "Pod is Ready" } else { "Pod is not Ready" }.into(),
            service_id: instance.id.clone(),
            spec: CheckSpec::default(),
        });
    }
    if let Some(check) = &instance.check {
        checks.push(CheckRegistration {
            id: check_id(&instance.id),
            name: format!("Service '{}' check", instance.service),
            status: None,
            notes: String::new(),
            output: String::new(),
            service_id: instance.id.clone(),
            spec: check_spec(check),
        });
    }
    Registration {
        node: NodeSpec {
            name: NODE.into(),
            address: "127.0.0.1".into(),
            meta: [(SOURCE_META.to_string(), SOURCE.to_string())].into(),
            ..Default::default()
        },
        skip_node_update: false,
        service: Some(ServiceSpec {
            id: instance.id,
            name: instance.service,
            tags: instance.tags,
            address: instance.address,
            meta: instance.meta,
            port: instance.port,
            ..Default::default()
        }),
        checks,
        replace_service_checks: true,
    }
}

impl CatalogPort for RaftCatalog {
    fn instances(&self) -> Vec<StoredInstance> {
        self.cluster.catalog.read(|s| s.node_services(NODE).into_iter().map(|svc| stored(s, svc)).collect())
    }

    fn owned_by(&self, owner: &str) -> Vec<StoredInstance> {
        self.cluster.catalog.read(|s| {
            s.node_services(NODE)
                .into_iter()
                .filter(|svc| census_operator::ownership::owner_of(&svc.meta) == Some(owner))
                .map(|svc| stored(s, svc))
                .collect()
        })
    }

    fn instance(&self, id: &str) -> Option<StoredInstance> {
        self.cluster.catalog.read(|s| s.service(NODE, id).map(|svc| stored(s, svc)))
    }

    async fn register(&self, instance: Instance) -> Result<u64, PortError> {
        self.write(Command::Register(registration(instance))).await
    }

    async fn deregister(&self, id: &str) -> Result<(), PortError> {
        self.write(Command::DeregisterService { node: NODE.into(), service_id: id.into() }).await.map(drop)
    }

    fn key(&self, key: &str) -> Option<StoredKey> {
        self.cluster.catalog.read(|s| {
            s.kv_get(key).map(|k| StoredKey {
                value: k.value.clone(),
                flags: k.flags,
                modify_index: k.modify_index,
            })
        })
    }

    async fn put_key(&self, key: &str, value: Vec<u8>, flags: u64) -> Result<u64, PortError> {
        self.write(Command::KvSet { key: key.into(), value, flags, cas: None }).await
    }

    async fn delete_key(&self, key: &str) -> Result<(), PortError> {
        self.write(Command::KvDelete { key: key.into(), cas: None }).await.map(drop)
    }

    async fn changed(&self) {
        let tables = WatchKey::Tables(vec![Table::Services, Table::Checks, Table::Kv]);
        loop {
            let mut sub = self.cluster.catalog.hub().subscribe(&tables);
            let now = self.cluster.catalog.read(|s| s.last_index());
            if self.seen.swap(now, Ordering::SeqCst) != now {
                return;
            }
            sub.changed().await;
        }
    }

    // Raft's own view, as `leadership_changed` watches it (the port's contract: `leading()`
    // changes only when that resolves). A leader that lost its quorum keeps its operator
    // running; its writes wait for a leader like any other.
    fn leading(&self) -> bool {
        self.cluster.leading_term().is_some()
    }

    async fn leadership_changed(&self, was_leading: bool) {
        loop {
            let term = self.cluster.leading_term();
            if term.is_some() != was_leading {
                return;
            }
            self.cluster.leadership_changed(term).await;
        }
    }
}

/// Runs the operator's checks (the `check` of Service resources) while this server leads.
async fn run_sync_node_checks(cluster: Arc<ClusterNode>, port: Arc<RaftCatalog>) {
    loop {
        if !port.leading() {
            port.leadership_changed(false).await;
            continue;
        }
        let runner = match CheckRunner::new(NODE.into(), cluster.catalog.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the check runner of the operator's node");
                return;
            }
        };
        let task = tokio::spawn(runner.clone().run(cluster.clone()));
        port.leadership_changed(true).await;
        task.abort();
        runner.stop_all();
    }
}

/// Starts the operator: connects to the Kubernetes API (in-cluster, or the kubeconfig), then
/// reconciles while this server leads.
pub async fn start(
    cluster: Arc<ClusterNode>,
    config: KubernetesConfig,
    instance: String,
) -> Result<(), census_operator::kube::Error> {
    let client = census_operator::kube::Client::try_default().await?;
    let port = Arc::new(RaftCatalog::new(cluster.clone()));
    tokio::spawn(run_sync_node_checks(cluster, port.clone()));
    let operator = census_operator::OperatorConfig {
        namespace: config.watch_namespace,
        instance,
        read_secrets: config.read_secrets,
    };
    tokio::spawn(census_operator::run(client, port, operator));
    Ok(())
}
