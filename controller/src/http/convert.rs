//! Between the catalog's records and Consul's wire types.

use std::time::Duration;

use base64::Engine;
use census_client::types::{
    AgentService, AgentServiceRegistration, CatalogService, CheckDefinition, HealthCheck, HealthService,
    KvPair, Node, ServiceAddress, Weights as WireWeights,
};
use census_client::{GoDuration, format_duration};

use super::error::ApiError;
use crate::catalog::model::{TaggedAddress, Weights};
use crate::catalog::{
    CheckKind, CheckRecord, CheckRegistration, CheckSpec, CheckStatus, KvRecord, NodeRecord, ServiceRecord,
    ServiceSpec,
};

/// Consul's default HTTP/TCP check timeout.
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Consul's cap on kept check output.
pub const DEFAULT_OUTPUT_MAX: u64 = 4096;

pub fn node(n: &NodeRecord) -> Node {
    Node {
        id: n.id.clone(),
        node: n.name.clone(),
        address: n.address.clone(),
        datacenter: n.datacenter.clone(),
        tagged_addresses: n.tagged_addresses.clone(),
        meta: n.meta.clone(),
        create_index: n.create_index,
        modify_index: n.modify_index,
    }
}

fn tagged(s: &ServiceRecord) -> std::collections::BTreeMap<String, ServiceAddress> {
    s.tagged_addresses
        .iter()
        .map(|(k, a)| (k.clone(), ServiceAddress { address: a.address.clone(), port: a.port }))
        .collect()
}

fn weights(w: Weights) -> WireWeights {
    WireWeights { passing: w.passing, warning: w.warning }
}

pub fn agent_service(s: &ServiceRecord, datacenter: &str) -> AgentService {
    AgentService {
        id: s.id.clone(),
        service: s.name.clone(),
        tags: s.tags.clone(),
        meta: s.meta.clone(),
        port: s.port,
        address: s.address.clone(),
        tagged_addresses: tagged(s),
        weights: weights(s.weights),
        enable_tag_override: s.enable_tag_override,
        datacenter: datacenter.to_string(),
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
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
        service_enable_tag_override: s.enable_tag_override,
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
}

pub fn health_service(s: &ServiceRecord) -> HealthService {
    HealthService {
        id: s.id.clone(),
        service: s.name.clone(),
        tags: s.tags.clone(),
        address: s.address.clone(),
        tagged_addresses: tagged(s),
        meta: s.meta.clone(),
        port: s.port,
        weights: weights(s.weights),
        enable_tag_override: s.enable_tag_override,
        create_index: s.create_index,
        modify_index: s.modify_index,
    }
}

pub fn health_check(c: &CheckRecord) -> HealthCheck {
    let ms = |v: u64| if v == 0 { String::new() } else { format_duration(Duration::from_millis(v)) };
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
        interval: ms(c.spec.interval_ms),
        timeout: ms(c.spec.timeout_ms),
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

fn millis(d: GoDuration) -> u64 {
    d.0.as_millis() as u64
}

/// Turns a check definition into what the catalog stores; refuses definitions Consul refuses.
pub fn check_registration(
    def: &CheckDefinition,
    default_id: &str,
    default_name: &str,
    service_id: &str,
    script_checks_enabled: bool,
) -> Result<CheckRegistration, ApiError> {
    let bad = |m: &str| ApiError::BadRequest(m.to_string());
    let kind = if !def.http.is_empty() {
        CheckKind::Http {
            url: def.http.clone(),
            method: if def.method.is_empty() { "GET".into() } else { def.method.to_ascii_uppercase() },
            header: def.header.clone(),
            body: def.body.clone(),
            tls_skip_verify: def.tls_skip_verify,
        }
    } else if !def.tcp.is_empty() {
        CheckKind::Tcp { address: def.tcp.clone() }
    } else if !def.ttl.is_zero() {
        CheckKind::Ttl { ttl_ms: millis(def.ttl) }
    } else if !def.args.is_empty() || !def.script.is_empty() {
        if !script_checks_enabled {
            return Err(bad(
                "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true",
            ));
        }
        let args = if def.args.is_empty() {
            vec!["sh".into(), "-c".into(), def.script.clone()]
        } else {
            def.args.clone()
        };
        CheckKind::Script { args }
    } else if !def.grpc.is_empty() {
        if def.grpc_use_tls {
            return Err(bad(
                "GRPCUseTLS is not supported by this version of census: gRPC checks speak plain HTTP/2",
            ));
        }
        let (address, service) = match def.grpc.split_once('/') {
            Some((address, service)) => (address.to_string(), service.to_string()),
            None => (def.grpc.clone(), String::new()),
        };
        CheckKind::Grpc { address, service }
    } else {
        return Err(bad("Invalid check: one of HTTP, TCP, gRPC, TTL or Args must be set"));
    };
    let needs_interval = !matches!(kind, CheckKind::Ttl { .. });
    if needs_interval && def.interval.is_zero() {
        return Err(bad("Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks"));
    }
    let status = match def.status.as_str() {
        "" => None,
        s => Some(CheckStatus::parse(s).ok_or_else(|| bad(&format!("Invalid check status: {s:?}")))?),
    };
    let timeout = if def.timeout.is_zero() { DEFAULT_CHECK_TIMEOUT } else { def.timeout.0 };
    Ok(CheckRegistration {
        id: if def.id.is_empty() { default_id.to_string() } else { def.id.clone() },
        name: if def.name.is_empty() { default_name.to_string() } else { def.name.clone() },
        status,
        notes: def.notes.clone(),
        output: String::new(),
        service_id: service_id.to_string(),
        spec: CheckSpec {
            kind,
            interval_ms: millis(def.interval),
            timeout_ms: timeout.as_millis() as u64,
            deregister_critical_after_ms: millis(def.deregister_critical_service_after),
            output_max_size: if def.output_max_size == 0 { DEFAULT_OUTPUT_MAX } else { def.output_max_size },
            success_before_passing: def.success_before_passing,
            failures_before_warning: def.failures_before_warning,
            failures_before_critical: def.failures_before_critical,
        },
    })
}

/// Validates a service name the way DNS needs it; Consul warns, census refuses what DNS cannot carry.
fn validate_name(name: &str, what: &str) -> Result<(), ApiError> {
    if name.contains(['\n', '\r', '\0', '/']) {
        return Err(ApiError::BadRequest(format!("Invalid {what} {name:?}: contains a forbidden character")));
    }
    Ok(())
}

/// An agent service registration as the catalog stores it: the service and its checks.
pub fn service_registration(
    reg: &AgentServiceRegistration,
    script_checks_enabled: bool,
) -> Result<(ServiceSpec, Vec<CheckRegistration>), ApiError> {
    if reg.name.is_empty() {
        return Err(ApiError::BadRequest("Missing service name".into()));
    }
    validate_name(&reg.name, "service name")?;
    let id = if reg.id.is_empty() { reg.name.clone() } else { reg.id.clone() };
    validate_name(&id, "service ID")?;
    let spec = ServiceSpec {
        id: id.clone(),
        name: reg.name.clone(),
        kind: reg.kind.clone(),
        tags: reg.tags.clone(),
        address: reg.address.clone(),
        tagged_addresses: reg
            .tagged_addresses
            .iter()
            .map(|(k, a)| (k.clone(), TaggedAddress { address: a.address.clone(), port: a.port }))
            .collect(),
        meta: reg.meta.clone(),
        port: reg.port,
        weights: reg.weights.map(|w| Weights { passing: w.passing, warning: w.warning }).unwrap_or_default(),
        enable_tag_override: reg.enable_tag_override,
    };
    let mut checks = Vec::new();
    let default_name = format!("Service '{}' check", reg.name);
    if let Some(def) = &reg.check {
        checks.push(check_registration(
            def,
            &format!("service:{id}"),
            &default_name,
            &id,
            script_checks_enabled,
        )?);
    }
    for (i, def) in reg.checks.iter().enumerate() {
        let default_id = if reg.checks.len() == 1 && reg.check.is_none() {
            format!("service:{id}")
        } else {
            format!("service:{id}:{}", i + 1)
        };
        checks.push(check_registration(def, &default_id, &default_name, &id, script_checks_enabled)?);
    }
    Ok((spec, checks))
}
