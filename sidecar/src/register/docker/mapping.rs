//! Registrator's rules, as a pure function from what Docker says about a container to the
//! instances it should have: one per published port (or, `-internal`, per exposed port on the
//! container's IP), named and tagged by `SERVICE_*` variables from env or labels.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::instance::{Health, Instance, Status};
use super::super::probe::Probe;

/// The parts of `docker inspect` that registration depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerView {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    pub image: String,
    pub running: bool,
    pub exit_code: i64,
    /// `SERVICE_*` settings: the environment, overridden by labels of the same name.
    pub settings: BTreeMap<String, String>,
    /// `80/tcp`-style exposed ports.
    pub exposed: Vec<(u16, String)>,
    pub published: Vec<Published>,
    /// Network name → the container's IP on it.
    pub networks: BTreeMap<String, String>,
    /// The `HEALTHCHECK` state (`starting`, `healthy`, `unhealthy`) and its last output.
    pub health: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub container_port: u16,
    pub proto: String,
    pub host_ip: String,
    pub host_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deregister {
    Always,
    /// Keep (critical) the instances of a container that exited non-zero.
    OnSuccess,
}

/// Host-wide settings (registrator's flags).
#[derive(Debug, Clone)]
pub struct HostRules {
    pub hostname: String,
    pub internal: bool,
    /// `-ip`: the address for published ports.
    pub ip: Option<String>,
    pub tags: Vec<String>,
    pub deregister: Deregister,
    pub check_interval: Duration,
    pub check_timeout: Duration,
}

/// An instance with the probe the sidecar runs for it (if `SERVICE_CHECK_HTTP|TCP|GRPC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub instance: Instance,
    pub probe: Option<(Probe, Duration, Duration)>,
}

fn setting<'a>(c: &'a ContainerView, port: u16, key: &str) -> Option<&'a str> {
    c.settings
        .get(&format!("SERVICE_{port}_{key}"))
        .or_else(|| c.settings.get(&format!("SERVICE_{key}")))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn split_tags(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string)
}

/// `registry:5000/team/web:1.2` → `web`.
fn image_base(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let no_digest = last.split('@').next().unwrap_or(last);
    no_digest.split(':').next().unwrap_or(no_digest).to_string()
}

const KNOWN: [&str; 11] = [
    "NAME",
    "TAGS",
    "IGNORE",
    "ID",
    "NETWORK",
    "CHECK_HTTP",
    "CHECK_TCP",
    "CHECK_GRPC",
    "CHECK_INTERVAL",
    "CHECK_TIMEOUT",
    "CHECK_TTL",
];

/// Every other `SERVICE_X` (or `SERVICE_<port>_X`) becomes meta `x`.
fn meta_for(c: &ContainerView, port: u16) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    let port_prefix = format!("SERVICE_{port}_");
    for (k, v) in &c.settings {
        let Some(rest) = k.strip_prefix("SERVICE_") else { continue };
        let first = rest.split('_').next().unwrap_or("");
        if first.parse::<u16>().is_ok() || KNOWN.contains(&rest) {
            continue;
        }
        meta.insert(rest.to_ascii_lowercase(), v.clone());
    }
    for (k, v) in &c.settings {
        if let Some(rest) = k.strip_prefix(&port_prefix)
            && !KNOWN.contains(&rest)
        {
            meta.insert(rest.to_ascii_lowercase(), v.clone());
        }
    }
    meta.insert("docker-container".into(), c.id.chars().take(12).collect());
    meta.insert("docker-image".into(), c.image.clone());
    meta
}

/// The container's address on the chosen network: `SERVICE_NETWORK`, else the first by name.
fn container_ip(c: &ContainerView) -> Option<String> {
    let chosen = c.settings.get("SERVICE_NETWORK").and_then(|n| c.networks.get(n));
    chosen.or_else(|| c.networks.values().find(|ip| !ip.is_empty())).cloned()
}

fn docker_health(c: &ContainerView) -> Option<Status> {
    let (state, output) = c.health.as_ref()?;
    let output = output.trim();
    Some(match state.as_str() {
        "healthy" => Status::new(Health::Passing, format!("Docker HEALTHCHECK healthy: {output}")),
        "starting" => Status::new(Health::Critical, "Docker HEALTHCHECK starting"),
        other => Status::new(Health::Critical, format!("Docker HEALTHCHECK {other}: {output}")),
    })
}

fn parse_secs(s: Option<&str>) -> Option<Duration> {
    s.and_then(|v| census_client::parse_duration(v).ok())
}

/// The instances a container should have, with their probes.
pub fn plan(c: &ContainerView, rules: &HostRules) -> Vec<Planned> {
    if c.settings.contains_key("SERVICE_IGNORE") {
        return Vec::new();
    }
    let exited_badly = !c.running && c.exit_code != 0 && rules.deregister == Deregister::OnSuccess;
    if !c.running && !exited_badly {
        return Vec::new();
    }
    // (container port, proto, address, port to register)
    let mut endpoints: Vec<(u16, String, String, u16)> = Vec::new();
    if rules.internal {
        let Some(ip) = container_ip(c) else { return Vec::new() };
        for (port, proto) in &c.exposed {
            endpoints.push((*port, proto.clone(), ip.clone(), *port));
        }
    } else {
        for p in &c.published {
            let address = match (&rules.ip, p.host_ip.as_str()) {
                (Some(ip), _) => ip.clone(),
                (None, "" | "0.0.0.0" | "::") => continue,
                (None, host_ip) => host_ip.to_string(),
            };
            endpoints.push((p.container_port, p.proto.clone(), address, p.host_port));
        }
    }
    endpoints.sort();
    endpoints.dedup_by(|a, b| (a.0, &a.1) == (b.0, &b.1));
    let several = endpoints.len() > 1;
    let health = docker_health(c);
    endpoints
        .into_iter()
        .filter(|(port, ..)| !c.settings.contains_key(&format!("SERVICE_{port}_IGNORE")))
        .map(|(cport, proto, address, port)| {
            let name = match c.settings.get(&format!("SERVICE_{cport}_NAME")).filter(|v| !v.is_empty()) {
                Some(n) => n.clone(),
                None => {
                    let base =
                        c.settings.get("SERVICE_NAME").cloned().unwrap_or_else(|| image_base(&c.image));
                    if several { format!("{base}-{cport}") } else { base }
                }
            };
            let mut id = format!("{}:{}:{}", rules.hostname, c.name, cport);
            if proto == "udp" {
                id.push_str(":udp");
            }
            let mut tags: Vec<String> =
                setting(c, cport, "TAGS").map(|t| split_tags(t).collect()).unwrap_or_default();
            tags.extend(rules.tags.iter().cloned());
            let interval = parse_secs(setting(c, cport, "CHECK_INTERVAL")).unwrap_or(rules.check_interval);
            let timeout = parse_secs(setting(c, cport, "CHECK_TIMEOUT")).unwrap_or(rules.check_timeout);
            let target = format!("{address}:{port}");
            let probe = if let Some(path) = setting(c, cport, "CHECK_HTTP") {
                let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
                Some(Probe::Http { url: format!("http://{target}{path}") })
            } else if setting(c, cport, "CHECK_TCP").is_some_and(|v| v != "false") {
                Some(Probe::Tcp { address: target })
            } else {
                setting(c, cport, "CHECK_GRPC").map(|s| Probe::Grpc {
                    address: target,
                    service: if s == "true" { String::new() } else { s.into() },
                })
            };
            let check_name = match (&health, &probe) {
                (Some(_), Some(p)) => Some(format!("Docker HEALTHCHECK and {}", p.describe())),
                (Some(_), None) => Some("Docker HEALTHCHECK".to_string()),
                (None, Some(p)) => Some(p.describe()),
                (None, None) if exited_badly => Some("Docker container state".to_string()),
                (None, None) => None,
            };
            let status = if exited_badly {
                Status::new(Health::Critical, format!("container exited with code {}", c.exit_code))
            } else {
                health.clone().unwrap_or_else(|| Status::new(Health::Passing, "container running"))
            };
            Planned {
                instance: Instance {
                    id,
                    name,
                    address,
                    port,
                    tags,
                    meta: meta_for(c, cport),
                    check_name,
                    status,
                    app_ttl: parse_secs(setting(c, cport, "CHECK_TTL")),
                },
                probe: if exited_badly { None } else { probe.map(|p| (p, interval, timeout)) },
            }
        })
        .collect()
}

/// The worse of Docker's own health and a probe's result (both must pass).
pub fn combine(docker: &Status, probe: &Status) -> Status {
    match (docker.health == Health::Passing, probe.health == Health::Passing) {
        (true, _) => probe.clone(),
        (false, true) => docker.clone(),
        (false, false) => {
            Status::new(docker.health.max(probe.health), format!("{}; {}", docker.output, probe.output))
        }
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
