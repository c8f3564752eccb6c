//! What a resource asks the catalog to hold, computed without side effects: validation with a
//! reason for the status condition, and the instances a Service's pods and endpoints make.

use std::collections::BTreeMap;
use std::time::Duration;

use census_client::duration::parse_duration;
use k8s_openapi::api::core::v1::Pod;

use crate::crd::{KVEntrySpec, ServiceCheck, ServiceSpec};
use crate::ownership::{
    OWNER_META, SOURCE, SOURCE_META, endpoint_instance_id, is_reserved_meta, pod_instance_id,
};
use crate::port::{Instance, InstanceCheck, Probe};

/// Consul's limit on a value (512 KiB).
pub const MAX_VALUE_BYTES: usize = 512 * 1024;

/// Why a spec cannot be written: `reason` becomes the condition's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

fn invalid(reason: &'static str, message: impl Into<String>) -> Invalid {
    Invalid { reason, message: message.into() }
}

/// The catalog service name: spec.name or the resource's name.
pub fn service_name(spec: &ServiceSpec, resource_name: &str) -> String {
    spec.name.clone().unwrap_or_else(|| resource_name.to_string())
}

/// A name DNS can answer for: letters, digits, `-` and `_`, at most 63 characters.
fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-')
}

fn duration(field: &str, value: &Option<String>, default: Duration) -> Result<Duration, Invalid> {
    match value {
        None => Ok(default),
        Some(v) => parse_duration(v).map_err(|e| invalid("InvalidCheck", format!("check.{field}: {e}"))),
    }
}

/// The check's probe kind, validated; the address is filled in per instance.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProbeKind {
    Http(String),
    Tcp,
    Grpc(String),
    Ttl(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckPlan {
    kind: ProbeKind,
    interval: Duration,
    timeout: Duration,
    deregister_after: Option<Duration>,
}

fn check_plan(check: &ServiceCheck) -> Result<CheckPlan, Invalid> {
    let mut kinds = Vec::new();
    if let Some(path) = &check.http {
        let path = if path.starts_with('/') { path.clone() } else { format!("/{path}") };
        kinds.push(ProbeKind::Http(path));
    }
    if check.tcp == Some(true) {
        kinds.push(ProbeKind::Tcp);
    }
    if let Some(service) = &check.grpc {
        kinds.push(ProbeKind::Grpc(service.clone()));
    }
    if check.ttl.is_some() {
        kinds.push(ProbeKind::Ttl(duration("ttl", &check.ttl, Duration::ZERO)?));
    }
    if kinds.len() != 1 {
        return Err(invalid("InvalidCheck", "check needs exactly one of http, tcp, grpc or ttl"));
    }
    let interval = duration("interval", &check.interval, Duration::from_secs(10))?;
    if interval < Duration::from_secs(1) {
        return Err(invalid("InvalidCheck", "check.interval must be at least 1s"));
    }
    let deregister_after = match &check.deregister_critical_service_after {
        None => None,
        v => Some(duration("deregisterCriticalServiceAfter", v, Duration::ZERO)?),
    };
    Ok(CheckPlan {
        kind: kinds.remove(0),
        interval,
        timeout: duration("timeout", &check.timeout, Duration::from_secs(5))?,
        deregister_after,
    })
}

/// A Service spec that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    pub name: String,
    owner: String,
    tags: Vec<String>,
    port: Option<u16>,
    meta: BTreeMap<String, String>,
    check: Option<CheckPlan>,
    pub selector: Option<BTreeMap<String, String>>,
    endpoints: Vec<(String, u16)>,
}

pub fn plan_service(spec: &ServiceSpec, namespace: &str, name: &str) -> Result<ServicePlan, Invalid> {
    let service = service_name(spec, name);
    if !valid_service_name(&service) {
        return Err(invalid(
            "InvalidName",
            format!("service name {service:?} must be 1-63 letters, digits, '-' or '_'"),
        ));
    }
    if let Some(key) = spec.meta.keys().find(|k| is_reserved_meta(k)) {
        return Err(invalid("ReservedMeta", format!("meta key {key:?} is reserved (census-*, external-*)")));
    }
    if spec.tags.iter().any(|t| t.is_empty()) {
        return Err(invalid("InvalidTag", "tags must not be empty"));
    }
    if spec.selector.is_none() && spec.endpoints.is_empty() {
        return Err(invalid("NoInstanceSource", "set a selector, endpoints, or both"));
    }
    if spec.selector.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(invalid("InvalidSelector", "an empty selector would select every pod"));
    }
    if spec.selector.is_some() && spec.port.is_none() {
        return Err(invalid("MissingPort", "a selector needs spec.port (the pods' port)"));
    }
    let mut endpoints = Vec::new();
    for ep in &spec.endpoints {
        let address = ep.address.trim();
        if address.is_empty() || address.contains(char::is_whitespace) || address.contains('/') {
            return Err(invalid(
                "InvalidEndpoint",
                format!("endpoint address {:?} is not a host", ep.address),
            ));
        }
        let Some(port) = ep.port.or(spec.port) else {
            return Err(invalid(
                "MissingPort",
                format!("endpoint {address} needs a port (or set spec.port)"),
            ));
        };
        endpoints.push((address.to_string(), port));
    }
    let check = spec.check.as_ref().map(check_plan).transpose()?;
    Ok(ServicePlan {
        name: service,
        owner: crate::ownership::owner_key(namespace, name),
        tags: spec.tags.clone(),
        port: spec.port,
        meta: spec.meta.clone(),
        check,
        selector: spec.selector.clone(),
        endpoints,
    })
}

/// Whether `labels` carry every pair of `selector`.
pub fn selects(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    labels.is_some_and(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The pod's IP and Ready condition, if it can serve: running (not finished, not terminating)
/// with an IP.
fn pod_endpoint(pod: &Pod) -> Option<(String, bool)> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
    let ready = status
        .conditions
        .as_ref()
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    Some((ip, ready))
}

fn host_port(address: &str, port: u16) -> String {
    if address.contains(':') { format!("[{address}]:{port}") } else { format!("{address}:{port}") }
}

impl ServicePlan {
    fn instance(&self, id: String, address: String, port: u16, pod_ready: Option<bool>) -> Instance {
        let mut meta = self.meta.clone();
        meta.insert(OWNER_META.into(), self.owner.clone());
        meta.insert(SOURCE_META.into(), SOURCE.into());
        let check = self.check.as_ref().map(|c| InstanceCheck {
            probe: match &c.kind {
                ProbeKind::Http(path) => {
                    Probe::Http { url: format!("http://{}{path}", host_port(&address, port)) }
                }
                ProbeKind::Tcp => Probe::Tcp { address: host_port(&address, port) },
                ProbeKind::Grpc(service) => {
                    Probe::Grpc { address: host_port(&address, port), service: service.clone() }
                }
                ProbeKind::Ttl(ttl) => Probe::Ttl { ttl: *ttl },
            },
            interval: c.interval,
            timeout: c.timeout,
            deregister_after: c.deregister_after,
        });
        Instance {
            id,
            service: self.name.clone(),
            address,
            port,
            tags: self.tags.clone(),
            meta,
            pod_ready,
            check,
        }
    }

    /// Every instance the spec asks for, given the pods of its namespace; sorted by ID.
    pub fn instances<'a>(&self, pods: impl IntoIterator<Item = &'a Pod>) -> Vec<Instance> {
        let mut out = Vec::new();
        if let (Some(selector), Some(port)) = (&self.selector, self.port) {
            for pod in pods {
                if !selects(selector, pod.metadata.labels.as_ref()) {
                    continue;
                }
                let (Some(pod_name), Some((ip, ready))) = (&pod.metadata.name, pod_endpoint(pod)) else {
                    continue;
                };
                out.push(self.instance(pod_instance_id(&self.owner, pod_name), ip, port, Some(ready)));
            }
        }
        for (address, port) in &self.endpoints {
            let id = endpoint_instance_id(&self.owner, address, *port);
            out.push(self.instance(id, address.clone(), *port, None));
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.dedup_by(|a, b| a.id == b.id);
        out
    }
}

/// Where a KVEntry's value comes from, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    Inline(Vec<u8>),
    ConfigMap { name: String, key: String },
    Secret { name: String, key: String },
}

pub fn plan_key(spec: &KVEntrySpec) -> Result<ValueSource, Invalid> {
    let key = &spec.key;
    if key.is_empty() || key.starts_with('/') || key.len() > 512 {
        return Err(invalid(
            "InvalidKey",
            format!("key {key:?} must be 1-512 characters not starting with '/'"),
        ));
    }
    let from = spec.value_from.as_ref();
    match (
        &spec.value,
        from.and_then(|f| f.config_map_key_ref.as_ref()),
        from.and_then(|f| f.secret_key_ref.as_ref()),
    ) {
        (Some(v), None, None) => {
            if v.len() > MAX_VALUE_BYTES {
                return Err(too_large(v.len()));
            }
            Ok(ValueSource::Inline(v.clone().into_bytes()))
        }
        (None, Some(r), None) => Ok(ValueSource::ConfigMap { name: r.name.clone(), key: r.key.clone() }),
        (None, None, Some(r)) => Ok(ValueSource::Secret { name: r.name.clone(), key: r.key.clone() }),
        _ => Err(invalid(
            "InvalidValueSource",
            "set exactly one of value, valueFrom.configMapKeyRef or valueFrom.secretKeyRef",
        )),
    }
}

pub fn too_large(len: usize) -> Invalid {
    invalid("ValueTooLarge", format!("value is {len} bytes; the limit is {MAX_VALUE_BYTES}"))
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
