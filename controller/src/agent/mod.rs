//! `census agent`: wires the catalog, Raft, the HTTP API and the check runner together.

pub mod checks;
pub mod config;
mod flap;
pub mod kubernetes;
mod leadership;
pub mod log_stream;
pub mod logging;
mod owner_leases;
mod probe;
pub mod reaper;
mod reload;
mod session_monitor;
mod shutdown;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;

use self::checks::CheckRunner;
use self::config::AgentConfig;
use crate::catalog::{
    Catalog, CheckRegistration, CheckSpec, CheckStatus, Command, Registration, ServiceSpec,
};
use crate::dns::{DnsListeners, Responder};
use crate::http::{AgentInfo, AppState};
use crate::raft::bootstrap::{BootstrapPlan, Discovery};
use crate::raft::{ClusterNode, RaftTiming, ServerNode};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("node ID file {path}: {source}")]
    NodeId { path: String, source: std::io::Error },
    #[error(transparent)]
    Dns(#[from] crate::dns::DnsError),
    #[error(transparent)]
    Cluster(#[from] crate::raft::ClusterError),
    #[error("{0}")]
    Other(String),
}

/// A UUID-shaped node ID, kept in the data dir so the node keeps its identity across restarts.
fn node_id(data_dir: Option<&Path>) -> Result<String, AgentError> {
    let fresh = || {
        let mut b = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    };
    let Some(dir) = data_dir else { return Ok(fresh()) };
    let path = dir.join("node-id");
    let err = |source| AgentError::NodeId { path: path.display().to_string(), source };
    match std::fs::read_to_string(&path) {
        Ok(id) if id.trim().len() == 36 => Ok(id.trim().to_string()),
        _ => {
            std::fs::create_dir_all(dir).map_err(err)?;
            let id = fresh();
            std::fs::write(&path, &id).map_err(err)?;
            Ok(id)
        }
    }
}

/// The Raft ID: the first 64 bits of the node ID.
fn raft_id(node_id: &str) -> u64 {
    let hex: String = node_id.chars().filter(|c| *c != '-').take(16).collect();
    u64::from_str_radix(&hex, 16).unwrap_or(1).max(1)
}

/// A listener whose connections send small writes at once (TCP_NODELAY): an HTTP/2 response is
/// several small frames, and with Nagle's algorithm the second waits for the peer's delayed ACK
/// (40 ms on Linux).
async fn listen(addr: &str) -> Result<impl axum::serve::Listener<Addr = std::net::SocketAddr>, AgentError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Listen { addr: addr.to_string(), source })?;
    Ok(axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    }))
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The service every server registers for itself, as Consul's servers do.
pub const SERVER_SERVICE: &str = "consul";
pub use owner_leases::AGENT_CHECK;

/// Registers this agent's node (with its `serfHealth` check and the `consul` service), retrying
/// until there is a leader.
async fn register_self(state: AppState, config: AgentConfig) {
    let commands = vec![Command::Register(Registration {
        node: state.self_node_spec(),
        service: Some(ServiceSpec {
            id: SERVER_SERVICE.into(),
            name: SERVER_SERVICE.into(),
            port: config.server_port,
            ..Default::default()
        }),
        checks: vec![CheckRegistration {
            id: owner_leases::AGENT_CHECK.into(),
            name: "Serf Health Status".into(),
            status: Some(CheckStatus::Passing),
            notes: String::new(),
            output: "Agent alive and reachable".into(),
            service_id: String::new(),
            spec: CheckSpec::default(),
        }],
        ..Default::default()
    })];
    for cmd in commands {
        loop {
            match state.write(cmd.clone()).await {
                Ok(_) => {
                    if let Command::Register(Registration { service: Some(s), .. }) = &cmd {
                        tracing::info!(target: "agent", "Synced service '{}'", s.id);
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "waiting to register this node");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// The `-pid-file`, written at start as Consul writes it (no directory is created) and removed
/// when the agent stops, however `run` returns.
struct PidFile(std::path::PathBuf);

impl PidFile {
    fn write(path: &Path) -> Result<PidFile, AgentError> {
        std::fs::write(path, std::process::id().to_string())
            .map_err(|e| AgentError::Other(format!("Could not open pid file {}: {e}", path.display())))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "could not remove the pid file");
        }
    }
}

/// Runs the agent until it is interrupted (SIGINT/SIGTERM) or told to leave.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    for warning in &config.warnings {
        tracing::warn!(target: "agent", "{warning}");
    }
    let _pid_file = config.pid_file.as_deref().map(PidFile::write).transpose()?;
    let node_id = node_id(config.data_dir.as_deref())?;
    let id = raft_id(&node_id);
    let raft_addr = host_port(&config.advertise, config.server_port);
    let http_host = if config.client == "0.0.0.0" { config.advertise.clone() } else { config.client.clone() };
    let me = ServerNode {
        name: config.node_name.clone(),
        raft_addr: raft_addr.clone(),
        http_addr: host_port(&http_host, config.http_port),
    };
    let m = config.raft_multiplier;
    let timing = RaftTiming { heartbeat_ms: 100 * m, election_min_ms: 300 * m, election_max_ms: 600 * m };
    let catalog = Arc::new(Catalog::new());
    let raft_listener = listen(&host_port(&config.bind, config.server_port)).await?;
    let http_listener = listen(&host_port(&config.client, config.http_port)).await?;
    let dns_listeners = match config.dns_port {
        Some(port) => {
            let addr = host_port(&config.client, port);
            let addr = addr.parse().map_err(|_| AgentError::Other(format!("bad DNS address {addr}")))?;
            Some(DnsListeners::bind(addr).await?)
        }
        None => None,
    };
    let cluster = ClusterNode::start(id, me, config.data_dir.clone(), timing, catalog.clone()).await?;
    let discovery = Arc::new(Discovery::default());
    let checks = CheckRunner::new(config.node_name.clone(), catalog.clone())
        .map_err(|e| AgentError::Other(e.to_string()))?;
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let state = AppState {
        cluster: cluster.clone(),
        catalog: catalog.clone(),
        info: Arc::new(AgentInfo {
            node_name: config.node_name.clone(),
            node_id: node_id.clone(),
            datacenter: config.datacenter.clone(),
            advertise_addr: config.advertise.clone(),
            enable_script_checks: config.enable_script_checks,
        }),
        checks: checks.clone(),
        discovery: discovery.clone(),
        leave: Arc::new(tokio::sync::Notify::new()),
        reload: reload_tx,
        events: Arc::default(),
    };

    let raft_router = crate::raft::rpc_server::router(crate::raft::rpc_server::RaftService {
        node: cluster.clone(),
        discovery: discovery.clone(),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(raft_listener, raft_router).await {
            tracing::error!(error = %e, "raft port stopped");
        }
    });
    let plan =
        BootstrapPlan { alone: config.bootstrap, expect: config.bootstrap_expect, join: config.join.clone() };
    tokio::spawn(crate::raft::bootstrap::run(cluster.clone(), discovery, plan));
    tokio::spawn(checks.run(cluster.clone()));
    tokio::spawn(reaper::reap_critical_services(cluster.clone()));
    tokio::spawn(owner_leases::heartbeat(cluster.clone(), config.node_name.clone(), config.owner_lease_ttl));
    tokio::spawn(owner_leases::monitor(
        cluster.clone(),
        config.node_name.clone(),
        config.owner_lease_ttl,
        config.reconnect_timeout,
    ));
    tokio::spawn(session_monitor::run(cluster.clone()));
    if let Some(k8s) = &config.kubernetes {
        kubernetes::start(cluster.clone(), k8s.clone(), config.node_name.clone())
            .await
            .map_err(|e| AgentError::Other(format!("cannot reach the Kubernetes API: {e}")))?;
    }
    tokio::spawn(register_self(state.clone(), config.clone()));
    tokio::spawn(reload::serve(state.clone(), config.args.clone(), config.data_dir.clone(), reload_rx));
    let ui = config.ui.clone().map(|dir| match dir {
        Some(dir) => crate::http::ui::UiSource::Dir(dir),
        None => crate::http::ui::UiSource::Embedded,
    });
    let http_router = crate::http::router(state.clone(), ui);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(http_listener, http_router).await {
            tracing::error!(error = %e, "http port stopped");
        }
    });
    if let Some(dns) = dns_listeners {
        dns.spawn(Arc::new(Responder::new(Arc::new(config.dns.clone()), catalog.clone())))?;
    }
    tracing::info!(
        node = %config.node_name, node_id = %node_id, raft = %raft_addr,
        http = %host_port(&config.client, config.http_port), dns = ?config.dns_port, dev = config.dev,
        "census agent running"
    );
    let policy = shutdown::LeavePolicy {
        skip_leave_on_interrupt: config.skip_leave_on_interrupt,
        leave_on_terminate: config.leave_on_terminate,
    };
    shutdown::until_stopped(&state, policy).await;
    cluster.shutdown().await;
    Ok(())
}
