//! `census agent`: wires the catalog, Raft, the HTTP API and the check runner together.

pub mod checks;
pub mod config;
pub mod join;
pub mod kubernetes;
pub mod leader;
pub mod log_repeats;
pub mod log_stream;
pub mod logging;
mod reload;
pub mod shutdown;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;

use self::checks::CheckRunner;
use self::config::AgentConfig;
use self::leader::{acl_init, autopilot, members, owner_leases, reaper, session_monitor};
use crate::acl::Acl;
use crate::catalog::{Catalog, Command, NodeSpec, Registration, ServiceSpec};
use crate::client_agent::ClientCluster;
use crate::client_agent::servers::ServerPool;
use crate::cluster::Cluster;
use crate::dns::{DnsListeners, Responder};
use crate::gossip::keyring::Keyring;
use crate::gossip::{Gossip, GossipConfig, GossipTiming};
use crate::http::{AgentInfo, AppState};
use crate::raft::bootstrap::{BootstrapPlan, Discovery};
use crate::raft::network::PeerTransport;
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
    #[error(transparent)]
    Gossip(#[from] crate::gossip::GossipError),
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
    Ok(nodelay(bind(addr).await?))
}

fn nodelay(listener: tokio::net::TcpListener) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    })
}

async fn bind(addr: &str) -> Result<tokio::net::TcpListener, AgentError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Listen { addr: addr.to_string(), source })
}

/// A TLS listener on `listener` (TLS connections set TCP_NODELAY themselves); its certificates
/// join what SIGHUP reads again.
fn tls_listener(
    listener: tokio::net::TcpListener,
    settings: &crate::tls::TlsSettings,
    alpn: &[&[u8]],
    reloader: &mut crate::tls::Reloader,
) -> Result<crate::tls::server::TlsListener, AgentError> {
    let tls = crate::tls::server::ReloadableServer::new(settings.clone(), alpn)
        .map_err(|e| AgentError::Other(e.to_string()))?;
    reloader.servers.push(tls.clone());
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    crate::tls::server::TlsListener::new(listener, tls).map_err(|source| AgentError::Listen { addr, source })
}

pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The service every server registers for itself, as Consul's servers do.
pub const SERVER_SERVICE: &str = "consul";
pub use leader::owner_leases::AGENT_CHECK;

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
        checks: vec![members::alive_check()],
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

/// The server port: plain TCP, or TLS (with the name a peer's certificate must carry to reach
/// the servers' routes, when `verify_incoming` and `verify_server_hostname` are both on).
enum RaftListener {
    Plain(tokio::net::TcpListener),
    Tls(crate::tls::server::TlsListener, Option<rustls_pki_types::ServerName<'static>>),
}

impl RaftListener {
    async fn serve(self, service: crate::raft::rpc_server::RaftService) {
        use crate::raft::peer_role::PeerCertificate;
        use crate::raft::rpc_server::{router, router_for_servers_named};
        let served = match self {
            RaftListener::Plain(tcp) => axum::serve(nodelay(tcp), router(service)).await,
            RaftListener::Tls(tls, None) => axum::serve(tls, router(service)).await,
            RaftListener::Tls(tls, Some(name)) => {
                let router = router_for_servers_named(service, name);
                axum::serve(tls, router.into_make_service_with_connect_info::<PeerCertificate>()).await
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "raft port stopped");
        }
    }
}

/// What differs between a server and a client agent once started.
struct Role {
    cluster: Arc<dyn Cluster>,
    server: Option<Arc<ClusterNode>>,
    servers: Option<Arc<ServerPool>>,
    discovery: Arc<Discovery>,
}

/// A server: Raft, its port, forming the cluster, the leader-only tasks, the operator.
async fn start_server(
    config: &AgentConfig,
    node_id: &str,
    http_addr: &str,
    gossip: &Arc<Gossip>,
    raft_listener: RaftListener,
    transport: PeerTransport,
    (catalog, acl): (Arc<Catalog>, Arc<Acl>),
) -> Result<Role, AgentError> {
    let raft_addr = host_port(&config.advertise, config.server_port);
    let me = ServerNode { name: config.node_name.clone(), raft_addr, http_addr: http_addr.to_string() };
    let election_ms = match config.raft_election_timeout {
        Some(t) => u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
        None => 300 * config.raft_multiplier,
    };
    let timing = RaftTiming {
        heartbeat_ms: election_ms / 3,
        election_min_ms: election_ms,
        election_max_ms: 2 * election_ms,
    };
    let cluster =
        ClusterNode::start(raft_id(node_id), me, config.data_dir.clone(), timing, catalog, transport).await?;
    cluster.set_min_free_bytes(config.raft_min_free_bytes);
    let discovery = Arc::new(Discovery::default());
    let raft_service = crate::raft::rpc_server::RaftService {
        node: cluster.clone(),
        discovery: discovery.clone(),
        gossip_addr: gossip.advertise().to_string(),
        gossip: gossip.clone(),
        datacenter: config.datacenter.clone(),
        acl,
    };
    tokio::spawn(raft_listener.serve(raft_service));
    let plan =
        BootstrapPlan { alone: config.bootstrap, expect: config.bootstrap_expect, join: config.join.clone() };
    tokio::spawn(crate::raft::bootstrap::run(cluster.clone(), discovery.clone(), plan));
    tokio::spawn(servers_by_gossip(gossip.clone(), discovery.clone()));
    tokio::spawn(join::retry_join(gossip.clone(), cluster.transport.clone(), None, config.join.clone()));
    tokio::spawn(reaper::reap_critical_services(cluster.clone()));
    tokio::spawn(owner_leases::monitor(
        cluster.clone(),
        gossip.clone(),
        config.owner_lease_ttl,
        config.reconnect_timeout,
    ));
    tokio::spawn(members::reconcile(cluster.clone(), gossip.clone(), config.reconnect_timeout));
    tokio::spawn(session_monitor::run(cluster.clone()));
    tokio::spawn(autopilot::run(cluster.clone(), gossip.clone(), config.datacenter.clone()));
    if let Some(k8s) = &config.kubernetes {
        kubernetes::start(cluster.clone(), k8s.clone(), config.node_name.clone())
            .await
            .map_err(|e| AgentError::Other(format!("cannot reach the Kubernetes API: {e}")))?;
    }
    Ok(Role { cluster: cluster.clone(), server: Some(cluster), servers: None, discovery })
}

/// A server member's Raft identity, from its gossip tags.
pub(crate) fn server_of(peer: &crate::gossip::Peer) -> Option<(crate::raft::NodeId, ServerNode)> {
    let raft_addr = peer.raft_addr()?;
    let node = ServerNode { name: peer.name.clone(), raft_addr, http_addr: peer.tag("http").to_string() };
    Some((raft_id(peer.tag("id")), node))
}

/// Servers that gossip finds take part in forming the cluster (`-bootstrap-expect` counts them).
async fn servers_by_gossip(gossip: Arc<Gossip>, discovery: Arc<Discovery>) {
    let mut changes = gossip.changes();
    loop {
        for (id, node) in gossip.alive_servers().iter().filter_map(server_of) {
            discovery.learn(&crate::raft::bootstrap::Hello {
                id,
                node,
                initialized: false,
                known: Vec::new(),
            });
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// The client of servers' Raft ports: TLS when `tls.internal_rpc` has a CA (checking servers'
/// certificates, presenting this agent's own).
fn peer_transport(config: &AgentConfig) -> Result<PeerTransport, AgentError> {
    let tls = &config.tls;
    let client = match tls.internal_rpc.enabled() {
        true => Some(
            crate::tls::client::client_config(&tls.internal_rpc, &tls.server_name, &[b"h2"])
                .map_err(|e| AgentError::Other(e.to_string()))?,
        ),
        false => None,
    };
    PeerTransport::with_tls(client).map_err(|e| AgentError::Other(e.to_string()))
}

/// A client agent: no Raft; its own state, synced by anti-entropy; servers found by gossip.
async fn start_client(
    config: &AgentConfig,
    gossip: &Arc<Gossip>,
    node: NodeSpec,
    transport: PeerTransport,
    (pool, acl): (Arc<ServerPool>, Arc<Acl>),
) -> Result<Role, AgentError> {
    let client = Arc::new(
        ClientCluster::open(config.data_dir.as_deref(), pool.clone())
            .map_err(|e| AgentError::Other(e.to_string()))?,
    );
    tokio::spawn(join::retry_join(gossip.clone(), transport, Some(pool.clone()), config.join.clone()));
    tokio::spawn(crate::client_agent::anti_entropy::run(
        client.clone(),
        gossip.clone(),
        node,
        config.anti_entropy_interval,
        acl,
    ));
    tokio::spawn(reaper::reap_own_services(client.clone()));
    Ok(Role { cluster: client, server: None, servers: Some(pool), discovery: Arc::default() })
}

/// The agent's ACL system, with what it keeps in its data dir: the tokens set through the API
/// (`enable_token_persistence`) and, on a client agent, the tokens its services were
/// registered with.
fn agent_acl(config: &AgentConfig, acl: Acl, client: bool) -> Arc<Acl> {
    let acl = match &config.data_dir {
        Some(dir) if config.acl.enable_token_persistence => acl.persisting_tokens_in(dir.clone()),
        _ => acl,
    };
    Arc::new(match &config.data_dir {
        Some(dir) if client => acl.keeping_registrations_in(dir.clone()),
        _ => acl,
    })
}

/// The gossip keys: the kept keyring, else `-encrypt`; `encrypt_verify_*` relax it while
/// encryption is being turned on across a running cluster.
fn gossip_keyring(config: &AgentConfig) -> Result<Keyring, AgentError> {
    let mut keyring = Keyring::load(config.data_dir.as_deref(), config.encrypt.as_deref())
        .map_err(|e| AgentError::Other(format!("gossip encryption: {e}")))?;
    if keyring.is_enabled() {
        keyring.accept_plain = !config.encrypt_verify_incoming;
        keyring.send_plain = !config.encrypt_verify_outgoing;
    }
    Ok(keyring)
}

/// Runs the agent until it is interrupted (SIGINT/SIGTERM) or told to leave.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    for warning in &config.warnings {
        tracing::warn!(target: "agent", "{warning}");
    }
    let _pid_file = config.pid_file.as_deref().map(PidFile::write).transpose()?;
    let node_id = node_id(config.data_dir.as_deref())?;
    let http_host = if config.client == "0.0.0.0" { config.advertise.clone() } else { config.client.clone() };
    let http_addr = host_port(&http_host, config.http_port);
    // The Raft port first, then HTTP: once a server answers HTTP (`census join` through it, say),
    // its peers started at the same time answer on their Raft port too.
    let raft_listener = match config.server {
        true => Some(bind(&host_port(&config.bind, config.server_port)).await?),
        false => None,
    };
    let http_listener = listen(&host_port(&config.client, config.http_port)).await?;
    let dns_listeners = match config.dns_port {
        Some(port) => {
            let addr = host_port(&config.client, port);
            let addr = addr.parse().map_err(|_| AgentError::Other(format!("bad DNS address {addr}")))?;
            Some(DnsListeners::bind(addr).await?)
        }
        None => None,
    };
    let gossip_addr = |host: &str| -> Result<std::net::SocketAddr, AgentError> {
        let addr = host_port(host, config.serf_lan_port);
        addr.parse().map_err(|_| AgentError::Other(format!("bad gossip address {addr}")))
    };
    let gossip = Gossip::start(GossipConfig {
        name: config.node_name.clone(),
        bind: gossip_addr(&config.bind)?,
        advertise: gossip_addr(&config.advertise)?,
        tags: crate::gossip::member_tags(
            config.server.then_some((config.server_port, config.bootstrap_expect)),
            &config.datacenter,
            &node_id,
            &http_addr,
        ),
        timing: GossipTiming::default(),
        keyring: gossip_keyring(&config)?,
    })
    .await?;
    let info = Arc::new(AgentInfo {
        node_name: config.node_name.clone(),
        node_id: node_id.clone(),
        datacenter: config.datacenter.clone(),
        advertise_addr: config.advertise.clone(),
        enable_script_checks: config.enable_script_checks,
        data_dir: config.data_dir.clone(),
    });
    let mut reloader = crate::tls::Reloader::default();
    let transport = peer_transport(&config)?;
    if config.tls.internal_rpc.enabled() {
        let name = config.tls.server_name.clone();
        reloader.peers = Some((transport.clone(), config.tls.internal_rpc.clone(), name));
    }
    let (role, acl) = if let Some(raft_listener) = raft_listener {
        let catalog = Arc::new(Catalog::new());
        let acl = agent_acl(
            &config,
            Acl::new(config.acl.clone(), catalog.clone(), config.datacenter.clone()),
            false,
        );
        // With a certificate the server port speaks TLS only: a plaintext peer is refused.
        let rpc = &config.tls.internal_rpc;
        let listener = if rpc.has_certificate() {
            let servers_only = (rpc.verify_incoming && rpc.verify_server_hostname)
                .then(|| rustls_pki_types::ServerName::try_from(config.tls.server_name.clone()))
                .transpose()
                .map_err(|e| AgentError::Other(format!("server name {:?}: {e}", config.tls.server_name)))?;
            RaftListener::Tls(tls_listener(raft_listener, rpc, &[b"h2"], &mut reloader)?, servers_only)
        } else {
            RaftListener::Plain(raft_listener)
        };
        if config.acl.enabled && !matches!(listener, RaftListener::Tls(_, Some(_))) {
            tracing::warn!(
                target: "agent",
                "ACLs are on, but the server port's own routes are open to {}: set a certificate, verify_incoming and verify_server_hostname in tls.internal_rpc",
                if rpc.has_certificate() { "any certificate from the CA" } else { "anyone who reaches it" }
            );
        }
        let role =
            start_server(&config, &node_id, &http_addr, &gossip, listener, transport, (catalog, acl.clone()))
                .await?;
        (role, acl)
    } else {
        let pool = Arc::new(
            ServerPool::new(gossip.clone(), transport.clone())
                .map_err(|e| AgentError::Other(e.to_string()))?,
        );
        // A client agent holds no ACL records: its servers resolve tokens.
        let acl = agent_acl(
            &config,
            Acl::asking(config.acl.clone(), pool.clone(), config.datacenter.clone()),
            true,
        );
        let node = AppState::node_spec_of(&info);
        (start_client(&config, &gossip, node, transport, (pool, acl.clone())).await?, acl)
    };
    let https_listener = match config.tls.https_port {
        Some(port) => {
            let tcp = bind(&host_port(&config.client, port)).await?;
            Some(tls_listener(tcp, &config.tls.https, &[b"h2", b"http/1.1"], &mut reloader)?)
        }
        None => None,
    };
    let catalog = role.cluster.catalog().clone();
    if let Some(server) = &role.server
        && config.acl.enabled
    {
        tokio::spawn(acl_init::run(server.clone(), acl.clone()));
    }
    let checks = CheckRunner::new(config.node_name.clone(), catalog.clone())
        .map_err(|e| AgentError::Other(e.to_string()))?;
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let state = AppState {
        cluster: role.cluster.clone(),
        server: role.server.clone(),
        servers: role.servers,
        gossip: gossip.clone(),
        catalog: catalog.clone(),
        info,
        checks: checks.clone(),
        discovery: role.discovery,
        leave: Arc::new(tokio::sync::Notify::new()),
        reload: reload_tx,
        events: Arc::default(),
        acl: acl.clone(),
    };
    tokio::spawn(checks.run(role.cluster.clone()));
    tokio::spawn(crate::http::event::receive(state.clone()));
    if state.server.is_some() {
        tokio::spawn(register_self(state.clone(), config.clone()));
    }
    tokio::spawn(reload::serve(
        state.clone(),
        config.args.clone(),
        config.data_dir.clone(),
        reload_rx,
        reloader,
    ));
    let ui = config.ui.clone().map(|dir| match dir {
        Some(dir) => crate::http::ui::UiSource::Dir(dir),
        None => crate::http::ui::UiSource::Embedded,
    });
    let http_router = crate::http::router(state.clone(), ui);
    if let Some(listener) = https_listener {
        let router = http_router.clone();
        tokio::spawn(crate::http::serve::serve(listener, router));
    }
    tokio::spawn(crate::http::serve::serve(http_listener, http_router));
    if let Some(dns) = dns_listeners {
        let dns_config = Arc::new(config.dns.clone());
        let responder = match &state.servers {
            Some(pool) => Responder::asking(dns_config, pool.clone()).with_acl(state.acl.clone()),
            None => Responder::new(dns_config, catalog.clone()).with_acl(state.acl.clone()),
        };
        dns.spawn(Arc::new(responder))?;
    }
    tracing::info!(
        node = %config.node_name, node_id = %node_id, server = config.server,
        http = %host_port(&config.client, config.http_port), gossip = %gossip.advertise(),
        dns = ?config.dns_port, dev = config.dev,
        "census agent running"
    );
    let policy = shutdown::LeavePolicy {
        skip_leave_on_interrupt: config.skip_leave_on_interrupt,
        leave_on_terminate: config.leave_on_terminate,
    };
    let raft_failed = async {
        match &state.server {
            Some(server) => server.failed().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = shutdown::until_stopped(&state, policy) => {}
        // The log could not be written or synced: this server must not acknowledge anything
        // more, and what is on disk past its last good record is unknown. Exit, so that a
        // supervisor restarts it once the disk is healthy (it replays up to that record).
        reason = raft_failed => {
            tracing::error!(%reason, "the Raft log failed; this server stops");
            return Err(AgentError::Cluster(crate::raft::ClusterError::Storage(reason)));
        }
    }
    if let Some(server) = &state.server {
        server.shutdown().await;
    }
    Ok(())
}
