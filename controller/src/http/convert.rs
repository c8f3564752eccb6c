//! The catalog's records as Consul's wire types.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use census_client::types::{
    AgentService, AgentServiceConnect, CatalogService, HealthCheck, HealthCheckDefinition, HealthService,
    KvPair, Locality as WireLocality, Node, ProxyConfig, ServiceAddress, Weights as WireWeights,
};
use census_client::{GoDuration, format_duration};
use sha2::{Digest, Sha256};

use crate::catalog::model::{Locality, Weights};
use crate::catalog::{CheckKind, CheckRecord, CheckSpec, KvRecord, NodeRecord, ServiceRecord};

pub use super::registration::DEFAULT_OUTPUT_MAX;

fn locality(l: &Option<Locality>) -> Option<WireLocality> {
    l.as_ref().map(|l| WireLocality { region: l.region.clone(), zone: l.zone.clone() })
}

pub fn node(n: &NodeRecord) -> Node {
    Node {
        id: n.id.clone(),
        node: n.name.clone(),
        address: n.address.clone(),
        datacenter: n.datacenter.clone(),
        tagged_addresses: n.tagged_addresses.clone(),
        meta: n.meta.clone(),
        locality: locality(&n.locality),
        create_index: n.create_index,
        modify_index: n.modify_index,
    }
}

fn tagged(s: &ServiceRecord) -> BTreeMap<String, ServiceAddress> {
    s.tagged_addresses
        .iter()
        .map(|(k, a)| (k.clone(), ServiceAddress { address: a.address.clone(), port: a.port }))
        .collect()
}

fn weights(w: Weights) -> WireWeights {
    WireWeights { passing: w.passing, warning: w.warning }
}

/// The stored proxy configuration; Consul's empty one (`Mode`, `MeshGateway`, `Expose`) if none.
pub fn proxy(s: &ServiceRecord) -> ProxyConfig {
    if s.proxy.is_empty() {
        return ProxyConfig::default();
    }
    serde_json::from_str(&s.proxy).unwrap_or_default()
}

fn connect(s: &ServiceRecord) -> AgentServiceConnect {
    AgentServiceConnect { native: s.connect_native, sidecar_service: None }
}

/// Whether Consul's agent shows a `Proxy` for a service of this kind.
fn shows_proxy(kind: &str) -> bool {
    matches!(
        kind,
        "connect-proxy" | "mesh-gateway" | "terminating-gateway" | "ingress-gateway" | "api-gateway"
    )
}

/// A service as the catalog's node view shows it (with its Raft indexes).
pub fn agent_service(s: &ServiceRecord, datacenter: &str) -> AgentService {
    AgentService {
        kind: s.kind.clone(),
        id: s.id.clone(),
        service: s.name.clone(),
        tags: s.tags.clone(),
        meta: s.meta.clone(),
        port: s.port,
        address: s.address.clone(),
        socket_path: s.socket_path.clone(),
        tagged_addresses: tagged(s),
        weights: weights(s.weights),
        enable_tag_override: s.enable_tag_override,
        create_index: s.create_index,
        modify_index: s.modify_index,
        content_hash: String::new(),
        proxy: shows_proxy(&s.kind).then(|| proxy(s)),
        connect: s.connect_native.then(|| connect(s)),
        datacenter: datacenter.to_string(),
        locality: locality(&s.locality),
    }
}

/// A service as this agent's endpoints show it: without Raft indexes.
pub fn local_service(s: &ServiceRecord, datacenter: &str) -> AgentService {
    AgentService { create_index: 0, modify_index: 0, ..agent_service(s, datacenter) }
}

/// 16 hex digits of a SHA-256 over the service as shown (Consul's is a hashstructure of the same
/// fields; clients treat it as opaque).
pub fn content_hash(svc: &AgentService) -> String {
    let bytes = serde_json::to_vec(svc).unwrap_or_default();
    Sha256::digest(&bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

pub fn catalog_service(n: &NodeRecord, s: &ServiceRecord) -> CatalogService {
    CatalogService {
        id: n.id.clone(),
        node: n.name.clone(),
        address: n.address.clone(),
        datacenter: n.datacenter.clone(),
        tagged_addresses: n.tagged_addresses.clone(),
        node_meta: n.meta.clone(),
        service_kind: s.kind.clone(),
        service_id: s.id.clone(),
        service_name: s.name.clone(),
        service_tags: s.tags.clone(),
        service_address: s.address.clone(),
        service_tagged_addresses: tagged(s),
        service_weights: weights(s.weights),
        service_meta: s.meta.clone(),
        service_port: s.port,
        service_socket_path: s.socket_path.clone(),
        service_enable_tag_override: s.enable_tag_override,
        service_proxy: proxy(s),
        service_connect: connect(s),
        service_locality: locality(&s.locality),
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
}

pub fn health_service(s: &ServiceRecord) -> HealthService {
    HealthService {
        kind: s.kind.clone(),
        id: s.id.clone(),
        service: s.name.clone(),
        tags: s.tags.clone(),
        address: s.address.clone(),
        tagged_addresses: tagged(s),
        meta: s.meta.clone(),
        port: s.port,
        socket_path: s.socket_path.clone(),
        weights: weights(s.weights),
        enable_tag_override: s.enable_tag_override,
        locality: locality(&s.locality),
        proxy: proxy(s),
        connect: connect(s),
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
}

fn go(ms: u64) -> GoDuration {
    GoDuration(Duration::from_millis(ms))
}

/// What a check runs, as Consul's `Definition` shows it.
pub fn definition(spec: &CheckSpec) -> HealthCheckDefinition {
    let mut def = HealthCheckDefinition {
        interval: go(spec.interval_ms),
        timeout: if spec.kind == CheckKind::Recorded { GoDuration::default() } else { go(spec.timeout_ms) },
        deregister_critical_service_after: go(spec.deregister_critical_after_ms),
        ..Default::default()
    };
    match &spec.kind {
        CheckKind::Recorded => {}
        CheckKind::Http {
            url,
            method,
            header,
            body,
            tls_skip_verify,
            tls_server_name,
            disable_redirects,
        } => {
            def.http = url.clone();
            def.method = if method == "GET" { String::new() } else { method.clone() };
            def.header = header.clone();
            def.body = body.clone();
            def.tls_skip_verify = *tls_skip_verify;
            def.tls_server_name = tls_server_name.clone();
            def.disable_redirects = *disable_redirects;
        }
        CheckKind::Tcp { address, use_tls } => (def.tcp, def.tcp_use_tls) = (address.clone(), *use_tls),
        CheckKind::Udp { address } => def.udp = address.clone(),
        CheckKind::Ttl { ttl_ms } => {
            def.ttl = go(*ttl_ms);
            def.timeout = GoDuration::default();
        }
        CheckKind::Grpc { address, service, use_tls } => {
            def.grpc = if service.is_empty() { address.clone() } else { format!("{address}/{service}") };
            def.grpc_use_tls = *use_tls;
        }
        CheckKind::H2Ping { address, use_tls } => {
            (def.h2ping, def.h2ping_use_tls) = (address.clone(), *use_tls)
        }
        CheckKind::Script { args } => def.script_args = args.clone(),
        CheckKind::Docker { container_id, shell, args } => {
            (def.docker_container_id, def.shell, def.script_args) =
                (container_id.clone(), shell.clone(), args.clone())
        }
        CheckKind::Alias { node, service } => {
            (def.alias_node, def.alias_service) = (node.clone(), service.clone());
            def.timeout = GoDuration::default();
        }
        CheckKind::OsService { name } => def.os_service = name.clone(),
    }
    def
}

pub fn health_check(c: &CheckRecord) -> HealthCheck {
    let shown = |ms: u64| if ms == 0 { String::new() } else { format_duration(Duration::from_millis(ms)) };
    let def = definition(&c.spec);
    HealthCheck {
        node: c.node.clone(),
        check_id: c.id.clone(),
        name: c.name.clone(),
        status: c.status.as_str().to_string(),
        notes: c.notes.clone(),
        output: c.output.clone(),
        service_id: c.service_id.clone(),
        service_name: c.service_name.clone(),
        service_tags: c.service_tags.clone(),
        check_type: c.spec.kind.type_name().to_string(),
        interval: shown(c.spec.interval_ms),
        timeout: if def.timeout.is_zero() { String::new() } else { shown(c.spec.timeout_ms) },
        exposed_port: 0,
        definition: def,
        create_index: c.create_index,
        modify_index: c.modify_index,
    }
}

pub fn kv_pair(r: &KvRecord) -> KvPair {
    KvPair {
        lock_index: r.lock_index,
        key: r.key.clone(),
        flags: r.flags,
        value: if r.value.is_empty() {
            None
        } else {
            Some(base64::engine::general_purpose::STANDARD.encode(&r.value))
        },
        session: r.session.clone(),
        create_index: r.create_index,
        modify_index: r.modify_index,
    }
}
