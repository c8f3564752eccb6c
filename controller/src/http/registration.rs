//! Registration bodies as the catalog stores them, refused as Consul refuses them.

use std::net::IpAddr;
use std::time::Duration;

use census_client::GoDuration;
use census_client::types::{
    AgentServiceRegistration, CheckDefinition, HealthCheckDefinition, Locality as WireLocality, ProxyConfig,
};

use super::error::ApiError;
use crate::catalog::model::{Locality, TaggedAddress, Weights};
use crate::catalog::{CheckKind, CheckRegistration, CheckSpec, CheckStatus, ServiceSpec};

/// Consul's default HTTP/TCP check timeout.
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Consul's cap on kept check output.
pub const DEFAULT_OUTPUT_MAX: u64 = 4096;

/// Who registers: the agent API validates more and fills in more than the catalog API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `/v1/agent/service/register` and definition files.
    Agent { script_checks: bool },
    /// `/v1/catalog/register` and txn service writes: stored as given.
    Catalog,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

fn millis(d: GoDuration) -> u64 {
    u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX)
}

/// A definition as clients send it, in the form Consul stores and shows (`ScriptArgs` hold a
/// `Script` run under its shell).
fn as_definition(def: &CheckDefinition) -> HealthCheckDefinition {
    let script_args = if !def.args.is_empty() || def.script.is_empty() {
        def.args.clone()
    } else if def.docker_container_id.is_empty() {
        vec!["sh".into(), "-c".into(), def.script.clone()]
    } else {
        let shell = if def.shell.is_empty() { "/bin/sh".to_string() } else { def.shell.clone() };
        vec![shell, "-c".into(), def.script.clone()]
    };
    HealthCheckDefinition {
        interval: def.interval,
        output_max_size: def.output_max_size,
        timeout: def.timeout,
        deregister_critical_service_after: def.deregister_critical_service_after,
        http: def.http.clone(),
        tls_server_name: def.tls_server_name.clone(),
        tls_skip_verify: def.tls_skip_verify,
        header: def.header.clone(),
        method: def.method.clone(),
        body: def.body.clone(),
        disable_redirects: def.disable_redirects,
        tcp: def.tcp.clone(),
        tcp_use_tls: def.tcp_use_tls,
        udp: def.udp.clone(),
        h2ping: def.h2ping.clone(),
        os_service: def.os_service.clone(),
        h2ping_use_tls: def.h2ping_use_tls,
        script_args,
        docker_container_id: def.docker_container_id.clone(),
        shell: def.shell.clone(),
        grpc: def.grpc.clone(),
        grpc_use_tls: def.grpc_use_tls,
        alias_node: def.alias_node.clone(),
        alias_service: def.alias_service.clone(),
        ttl: def.ttl,
    }
}

/// What a definition probes, by Consul's order of precedence; `Recorded` when it names nothing.
pub fn kind_of(def: &HealthCheckDefinition) -> CheckKind {
    if !def.http.is_empty() {
        CheckKind::Http {
            url: def.http.clone(),
            method: if def.method.is_empty() { "GET".into() } else { def.method.to_ascii_uppercase() },
            header: def.header.clone(),
            body: def.body.clone(),
            tls_skip_verify: def.tls_skip_verify,
            tls_server_name: def.tls_server_name.clone(),
            disable_redirects: def.disable_redirects,
        }
    } else if !def.tcp.is_empty() {
        CheckKind::Tcp { address: def.tcp.clone(), use_tls: def.tcp_use_tls }
    } else if !def.udp.is_empty() {
        CheckKind::Udp { address: def.udp.clone() }
    } else if !def.ttl.is_zero() {
        CheckKind::Ttl { ttl_ms: millis(def.ttl) }
    } else if !def.docker_container_id.is_empty() {
        CheckKind::Docker {
            container_id: def.docker_container_id.clone(),
            shell: def.shell.clone(),
            args: def.script_args.clone(),
        }
    } else if !def.script_args.is_empty() {
        CheckKind::Script { args: def.script_args.clone() }
    } else if !def.grpc.is_empty() {
        let (address, service) = def.grpc.split_once('/').unwrap_or((def.grpc.as_str(), ""));
        CheckKind::Grpc { address: address.into(), service: service.into(), use_tls: def.grpc_use_tls }
    } else if !def.h2ping.is_empty() {
        CheckKind::H2Ping { address: def.h2ping.clone(), use_tls: def.h2ping_use_tls }
    } else if !def.alias_service.is_empty() || !def.alias_node.is_empty() {
        CheckKind::Alias { node: def.alias_node.clone(), service: def.alias_service.clone() }
    } else if !def.os_service.is_empty() {
        CheckKind::OsService { name: def.os_service.clone() }
    } else {
        CheckKind::Recorded
    }
}

/// What a check definition probes; refuses definitions Consul refuses, and the TLS variants
/// census cannot run yet.
fn check_kind(def: &CheckDefinition, script_checks: bool) -> Result<CheckKind, ApiError> {
    let kind = kind_of(&as_definition(def));
    let no_tls = |field: &str| {
        Err(bad(format!(
            "Invalid check: {field} is not supported by this version of census (TLS for checks is not built yet)"
        )))
    };
    match &kind {
        CheckKind::Recorded => Err(bad(
            "Invalid check: one of HTTP, TCP, UDP, gRPC, H2PING, TTL, Args, DockerContainerID, AliasService or OSService must be set",
        )),
        CheckKind::Tcp { use_tls: true, .. } => no_tls("TCPUseTLS"),
        CheckKind::Grpc { use_tls: true, .. } => no_tls("GRPCUseTLS"),
        CheckKind::H2Ping { use_tls: true, .. } => no_tls("H2PingUseTLS"),
        CheckKind::Script { .. } | CheckKind::Docker { .. } if !script_checks => Err(bad(SCRIPTS_DISABLED)),
        CheckKind::Alias { .. } if !def.interval.is_zero() => {
            Err(bad("Invalid check: Interval cannot be set for Alias checks"))
        }
        _ => Ok(kind),
    }
}

const SCRIPTS_DISABLED: &str = "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";

/// A check definition as the catalog stores it, with Consul's defaults for ID and name.
pub fn check_registration(
    def: &CheckDefinition,
    default_id: &str,
    default_name: &str,
    service_id: &str,
    script_checks: bool,
) -> Result<CheckRegistration, ApiError> {
    let kind = check_kind(def, script_checks)?;
    let needs_interval = !matches!(kind, CheckKind::Ttl { .. } | CheckKind::Alias { .. });
    if needs_interval && def.interval.is_zero() {
        return Err(bad("Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"));
    }
    if def.failures_before_warning > def.failures_before_critical && def.failures_before_critical > 0 {
        return Err(bad("Invalid check: FailuresBeforeWarning can't be higher than FailuresBeforeCritical"));
    }
    let status = match def.status.as_str() {
        "" => None,
        s => Some(CheckStatus::parse(s).ok_or_else(|| bad(format!("Invalid check status: {s:?}")))?),
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
            external: false,
            interval_ms: millis(def.interval),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            deregister_critical_after_ms: millis(def.deregister_critical_service_after),
            output_max_size: if def.output_max_size == 0 { DEFAULT_OUTPUT_MAX } else { def.output_max_size },
            success_before_passing: def.success_before_passing,
            failures_before_warning: def.failures_before_warning,
            failures_before_critical: def.failures_before_critical,
        },
    })
}

/// A catalog-registered check's `Definition`: kept for reading back, never run here.
pub fn recorded_spec(def: Option<&HealthCheckDefinition>) -> CheckSpec {
    let Some(def) = def else { return CheckSpec { external: true, ..Default::default() } };
    CheckSpec {
        kind: kind_of(def),
        external: true,
        interval_ms: millis(def.interval),
        timeout_ms: millis(def.timeout),
        deregister_critical_after_ms: millis(def.deregister_critical_service_after),
        output_max_size: def.output_max_size,
        ..Default::default()
    }
}

/// Refuses names that DNS and URLs cannot carry (Consul warns; census refuses what breaks it).
fn validate_name(name: &str, what: &str) -> Result<(), ApiError> {
    if name.contains(['\n', '\r', '\0', '/']) {
        return Err(bad(format!("Invalid {what} {name:?}: contains a forbidden character")));
    }
    Ok(())
}

pub fn locality(l: &Option<WireLocality>) -> Option<Locality> {
    l.as_ref()
        .filter(|l| !l.region.is_empty() || !l.zone.is_empty())
        .map(|l| Locality { region: l.region.clone(), zone: l.zone.clone() })
}

fn is_proxy_kind(kind: &str) -> bool {
    matches!(
        kind,
        "connect-proxy" | "mesh-gateway" | "terminating-gateway" | "ingress-gateway" | "api-gateway"
    )
}

/// Consul's `NodeService.Validate` for the kinds and Connect settings.
fn validate_kind(reg: &AgentServiceRegistration) -> Result<(), ApiError> {
    let kind = reg.kind.as_str();
    if !kind.is_empty() && !is_proxy_kind(kind) {
        return Err(bad(format!("Invalid service kind: {kind:?}")));
    }
    if kind == "connect-proxy" {
        if reg.proxy.as_ref().is_none_or(|p| p.destination_service_name.is_empty()) {
            return Err(bad("Proxy.DestinationServiceName must be non-empty for Connect proxy services"));
        }
        if reg.port == 0 && reg.socket_path.is_empty() {
            return Err(bad("Port or SocketPath must be set for a connect-proxy"));
        }
    }
    if matches!(kind, "mesh-gateway" | "terminating-gateway") && reg.port == 0 {
        return Err(bad(format!("Port must be non-zero for a {kind}")));
    }
    Ok(())
}

/// The stored form of a proxy configuration ("" for none).
fn proxy_json(proxy: &Option<ProxyConfig>) -> Result<String, ApiError> {
    match proxy {
        None => Ok(String::new()),
        Some(p) if *p == ProxyConfig::default() => Ok(String::new()),
        Some(p) => serde_json::to_string(p).map_err(|e| ApiError::Internal(e.to_string())),
    }
}

/// A service registration as the catalog stores it: the service and its checks.
pub fn service_registration(
    reg: &AgentServiceRegistration,
    via: Via,
) -> Result<(ServiceSpec, Vec<CheckRegistration>), ApiError> {
    if reg.name.is_empty() {
        return Err(bad("Missing service name"));
    }
    validate_name(&reg.name, "service name")?;
    let id = if reg.id.is_empty() { reg.name.clone() } else { reg.id.clone() };
    validate_name(&id, "service ID")?;
    validate_kind(reg)?;
    let weights = match (reg.weights, via) {
        (None, _) => Weights::default(),
        (Some(w), Via::Agent { .. }) if w.passing < 1 => {
            return Err(bad("Invalid Weights: Passing must be greater than 0"));
        }
        // The catalog stores Consul's default for weights it would not accept from an agent
        // (HashiCorp's Go client always sends {"Passing": 0, "Warning": 0}).
        (Some(w), Via::Catalog) if w.passing < 1 => Weights::default(),
        (Some(w), _) => Weights { passing: w.passing, warning: w.warning },
    };
    let mut tagged_addresses: std::collections::BTreeMap<String, TaggedAddress> = reg
        .tagged_addresses
        .iter()
        .map(|(k, a)| (k.clone(), TaggedAddress { address: a.address.clone(), port: a.port }))
        .collect();
    if matches!(via, Via::Agent { .. })
        && let Ok(ip) = reg.address.parse::<IpAddr>()
    {
        // Consul's agent adds the service address for each network as lan_ipv4/wan_ipv4 (or _ipv6).
        let family = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
        for net in ["lan", "wan"] {
            tagged_addresses
                .entry(format!("{net}_{family}"))
                .or_insert_with(|| TaggedAddress { address: reg.address.clone(), port: reg.port });
        }
    }
    let spec = ServiceSpec {
        id: id.clone(),
        name: reg.name.clone(),
        kind: reg.kind.clone(),
        tags: reg.tags.clone(),
        address: reg.address.clone(),
        tagged_addresses,
        meta: reg.meta.clone(),
        port: reg.port,
        socket_path: reg.socket_path.clone(),
        weights,
        enable_tag_override: reg.enable_tag_override,
        proxy: proxy_json(&reg.proxy)?,
        connect_native: reg.connect.as_ref().is_some_and(|c| c.native),
        locality: locality(&reg.locality),
    };
    let script_checks = match via {
        Via::Agent { script_checks } => script_checks,
        Via::Catalog => false,
    };
    // An empty `Check` object is no check, as in Consul.
    let definitions: Vec<&CheckDefinition> =
        reg.check.iter().chain(reg.checks.iter()).filter(|d| **d != CheckDefinition::default()).collect();
    let default_name = format!("Service '{}' check", reg.name);
    let mut checks = Vec::with_capacity(definitions.len());
    for (i, def) in definitions.iter().enumerate() {
        let default_id =
            if definitions.len() > 1 { format!("service:{id}:{}", i + 1) } else { format!("service:{id}") };
        checks.push(check_registration(def, &default_id, &default_name, &id, script_checks)?);
    }
    Ok((spec, checks))
}
