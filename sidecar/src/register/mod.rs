//! `census-sidecar register`: registrator done right. Keeps instances of a pod (`--platform
//! kubernetes`) or of a Docker host's containers (`--platform docker`) in the catalog, with the
//! health the sidecar measures and a lease that expires them when the sidecar dies.

pub mod docker;
pub mod instance;
pub mod kubernetes;
pub mod probe;
pub mod sync;

use std::collections::BTreeMap;
use std::time::Duration;

use census_client::Client;

use crate::process::{BACKOFF_MIN, agent_client, next_backoff};
use clap::{Args, ValueEnum};
use tokio::sync::{mpsc, watch};

use self::docker::mapping::{Deregister, HostRules};
use self::instance::Lease;
use self::kubernetes::{Pod, PodCheck, PodService};
use self::probe::Prober;
use self::sync::{CatalogSync, Desired, OnExit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Platform {
    Docker,
    Kubernetes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeregisterMode {
    Always,
    OnSuccess,
}

fn duration(s: &str) -> Result<Duration, String> {
    census_client::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// Registrator's registry URI (`consul://HOST:PORT`); the same as -consul-addr.
    #[arg(value_name = "consul://HOST:PORT")]
    pub registry: Option<String>,
    #[arg(long, value_enum, default_value = "docker")]
    pub platform: Platform,
    /// The census (or Consul) agent; default $CENSUS_HTTP_ADDR, $CONSUL_HTTP_ADDR, 127.0.0.1:8500.
    #[arg(long, value_name = "ADDR")]
    pub consul_addr: Option<String>,
    /// ACL token sent as X-Consul-Token (default $CONSUL_HTTP_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Lease: instances go critical this long after the sidecar stops reporting.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub ttl: Duration,
    /// Critical instances of a silent sidecar are removed after this long.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = duration)]
    pub deregister_after: Duration,
    /// Tags added to every instance (comma-separated).
    #[arg(long, value_name = "TAGS", value_delimiter = ',')]
    pub tags: Vec<String>,

    // ---- kubernetes
    /// Kubernetes: the service this pod is an instance of.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Kubernetes: the app's port.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Kubernetes: service meta KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Kubernetes: check the app with GET http://127.0.0.1:PORT/PATH.
    #[arg(long, value_name = "PATH")]
    pub check_http: Option<String>,
    /// Kubernetes: check the app by connecting to 127.0.0.1:PORT.
    #[arg(long)]
    pub check_tcp: bool,
    /// Kubernetes: check the app with the gRPC health protocol (optionally naming a service).
    #[arg(long, value_name = "SERVICE", num_args = 0..=1, default_missing_value = "")]
    pub check_grpc: Option<String>,
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub check_interval: Duration,
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub check_timeout: Duration,
    /// Kubernetes: where the app answers checks.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub check_host: String,
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub pod_name: Option<String>,
    #[arg(long, env = "POD_NAMESPACE", value_name = "NS", default_value = "default")]
    pub pod_namespace: String,
    #[arg(long, env = "POD_IP", value_name = "IP")]
    pub pod_ip: Option<String>,
    #[arg(long, env = "NODE_NAME", value_name = "NODE", default_value = "")]
    pub node_name: String,

    // ---- docker
    /// Docker: register exposed ports on the container's IP instead of published host ports.
    #[arg(long)]
    pub internal: bool,
    /// Docker: the address to register for published ports.
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Docker: re-list every container on this period (seconds, 0 = only on events).
    #[arg(long, value_name = "SECONDS", default_value = "0")]
    pub resync: u64,
    /// Docker: with -resync, also remove this host's instances whose container is gone on each
    /// resync (they are always removed at start).
    #[arg(long)]
    pub cleanup: bool,
    /// Docker: when a container exits, deregister always, or only when it exited with 0 (a
    /// failed one stays, critical).
    #[arg(long, value_enum, default_value = "always")]
    pub deregister: DeregisterMode,
    /// Docker: the host name in instance IDs (HOST:CONTAINER:PORT); default the machine's.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Prober(#[from] probe::ProberError),
}

impl RegisterArgs {
    fn client(&self) -> Result<Client, RegisterError> {
        let from_uri = self.registry.as_deref().map(|u| {
            u.strip_prefix("consul://").or_else(|| u.strip_prefix("census://")).unwrap_or(u).to_string()
        });
        let client = agent_client(self.consul_addr.clone().or(from_uri), self.token.clone())
            .map_err(|e| RegisterError::Invalid(e.to_string()))?;
        Ok(client.with_default_timeout(Duration::from_secs(5)))
    }

    fn lease(&self) -> Result<Lease, RegisterError> {
        if self.ttl < Duration::from_secs(1) {
            return Err(RegisterError::Invalid("-ttl must be at least 1s".into()));
        }
        Ok(Lease { ttl: self.ttl, deregister_after: self.deregister_after })
    }

    fn tags(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
    }

    fn pod_service(&self) -> Result<PodService, RegisterError> {
        let need = |v: &Option<String>, what: &str| {
            v.clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| RegisterError::Invalid(format!("kubernetes: {what}")))
        };
        let pod = Pod {
            name: need(
                &self.pod_name,
                "the pod name is required (-pod-name or $POD_NAME from the downward API)",
            )?,
            namespace: self.pod_namespace.clone(),
            ip: need(&self.pod_ip, "the pod IP is required (-pod-ip or $POD_IP from the downward API)")?,
            node: self.node_name.clone(),
        };
        let service = need(&self.service, "-service NAME is required")?;
        let port = self.port.ok_or_else(|| RegisterError::Invalid("kubernetes: -port is required".into()))?;
        let mut meta = BTreeMap::new();
        for kv in &self.meta {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| RegisterError::Invalid(format!("-meta {kv:?} is not KEY=VALUE")))?;
            meta.insert(k.to_string(), v.to_string());
        }
        let checks = [self.check_http.is_some(), self.check_tcp, self.check_grpc.is_some()];
        if checks.iter().filter(|c| **c).count() > 1 {
            return Err(RegisterError::Invalid("choose one of -check-http, -check-tcp, -check-grpc".into()));
        }
        let check = if let Some(path) = &self.check_http {
            Some(PodCheck::Http { path: path.clone() })
        } else if self.check_tcp {
            Some(PodCheck::Tcp)
        } else {
            self.check_grpc.clone().map(|service| PodCheck::Grpc { service })
        };
        Ok(PodService {
            pod,
            service,
            port,
            tags: self.tags(),
            meta,
            check_host: self.check_host.clone(),
            check,
            interval: self.check_interval,
            timeout: self.check_timeout,
        })
    }

    fn host_rules(&self) -> HostRules {
        let hostname = self.hostname.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into())
        });
        HostRules {
            hostname,
            internal: self.internal,
            ip: self.ip.clone(),
            tags: self.tags(),
            deregister: match self.deregister {
                DeregisterMode::Always => Deregister::Always,
                DeregisterMode::OnSuccess => Deregister::OnSuccess,
            },
            check_interval: self.check_interval,
            check_timeout: self.check_timeout,
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    let signal = crate::process::stop_signal().await;
    tracing::info!(%signal, "stopping");
}

pub async fn run(args: RegisterArgs) -> Result<(), RegisterError> {
    let client = args.client()?;
    let lease = args.lease()?;
    let prober = Prober::new()?;
    let (desired_tx, desired_rx) = watch::channel(Desired::new());
    match args.platform {
        Platform::Kubernetes => {
            let spec = args.pod_service()?;
            let sync = CatalogSync::new(client, spec.owner(), lease);
            tracing::info!(owner = %spec.owner(), service = %spec.service, "registering pod");
            let measure = tokio::spawn(kubernetes::measure(spec, prober, desired_tx));
            sync::run(sync, desired_rx, stop_signal(), OnExit::Deregister, None).await;
            measure.abort();
        }
        Platform::Docker => {
            let rules = args.host_rules();
            let owner = rules.hostname.clone();
            let adopt_every = (args.cleanup && args.resync > 0).then(|| Duration::from_secs(args.resync));
            let resync = (args.resync > 0).then(|| Duration::from_secs(args.resync));
            let sync = CatalogSync::new(client, owner.clone(), lease);
            tracing::info!(host = %owner, internal = rules.internal, "registering Docker containers");
            let watcher = tokio::spawn(watch_docker(rules, prober, desired_tx, resync));
            sync::run(sync, desired_rx, stop_signal(), OnExit::KeepLease, adopt_every).await;
            watcher.abort();
        }
    }
    Ok(())
}

/// Follows the engine forever, reconnecting with backoff; the catalog keeps the last known
/// instances (and their leases) while the engine is away.
async fn watch_docker(
    rules: HostRules,
    prober: Prober,
    desired: watch::Sender<Desired>,
    resync: Option<Duration>,
) {
    let (results_tx, mut results_rx) = mpsc::channel(256);
    let mut state = docker::HostState::new(rules, prober, results_tx);
    let mut backoff = BACKOFF_MIN;
    loop {
        match docker::connect().await {
            Ok(engine) => {
                backoff = BACKOFF_MIN;
                match docker::follow(&engine, &mut state, &mut results_rx, &desired, resync).await {
                    Ok(()) => tracing::warn!("Docker event stream ended; reconnecting"),
                    Err(e) => tracing::warn!(error = %e, "Docker event stream failed; reconnecting"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "Docker unreachable; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = next_backoff(backoff);
    }
}
