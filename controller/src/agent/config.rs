//! `census agent` flags, spelled as Consul spells them, and the JSON agent config files.

use std::path::{Path, PathBuf};

use census_client::types::AgentServiceRegistration;
use clap::Args;
use serde::Deserialize;

use crate::dns::name::Domains;
use crate::dns::{DnsConfig, DnsConfigFile};

pub const DEFAULT_SERVER_PORT: u16 = 8300;
pub const DEFAULT_HTTP_PORT: u16 = 8500;
pub const DEFAULT_DNS_PORT: u16 = 8600;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config {path}: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("{0}")]
    Invalid(String),
}

/// The flags of `census agent`. Single-dash spellings (`-bootstrap-expect=3`) are accepted too.
#[derive(Debug, Clone, Default, Args)]
pub struct AgentArgs {
    /// Development mode: one in-memory server, ready at once, nothing written to disk.
    #[arg(long)]
    pub dev: bool,
    /// Run as a server (census agents always are; accepted for Consul compatibility).
    #[arg(long)]
    pub server: bool,
    /// Initialize a one-server cluster at once.
    #[arg(long)]
    pub bootstrap: bool,
    /// Wait for this many servers before electing a leader.
    #[arg(long, value_name = "N")]
    pub bootstrap_expect: Option<usize>,
    /// A server to join, retried until it answers (repeatable). HOST[:PORT], port defaults to 8300.
    #[arg(long, value_name = "ADDR")]
    pub retry_join: Vec<String>,
    /// A server to join at start (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub join: Vec<String>,
    /// Where the Raft log, snapshots and node ID live.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// This node's name (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Address the server port listens on (default 0.0.0.0).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Address other servers reach this one at.
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<String>,
    /// Address the HTTP and DNS interfaces listen on (default 127.0.0.1).
    #[arg(long, value_name = "ADDR")]
    pub client: Option<String>,
    #[arg(long, value_name = "DC")]
    pub datacenter: Option<String>,
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<u16>,
    /// Raft between servers.
    #[arg(long, value_name = "PORT")]
    pub server_port: Option<u16>,
    /// The DNS interface (UDP and TCP); -1 turns it off.
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub dns_port: Option<i32>,
    /// The DNS domain census answers for (default `consul.`).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// A second domain answered like the first.
    #[arg(long, value_name = "DOMAIN")]
    pub alt_domain: Option<String>,
    /// Upstream DNS server for names outside the domain (repeatable), IP[:PORT].
    #[arg(long, value_name = "ADDR")]
    pub recursor: Vec<String>,
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// A JSON agent config file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub config_file: Vec<PathBuf>,
    /// A directory of JSON agent config files, read in name order (repeatable).
    #[arg(long, value_name = "DIR")]
    pub config_dir: Vec<PathBuf>,
    /// Accept script checks (`Args`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_script_checks: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_local_script_checks: Option<bool>,
    /// Serve the web UI at /ui/ (on by default with -dev).
    #[arg(long)]
    pub ui: bool,
    /// Serve the UI from this directory instead of the copy in the binary (implies -ui).
    #[arg(long, value_name = "DIR")]
    pub ui_dir: Option<PathBuf>,
    #[arg(long, value_name = "PATH")]
    pub ui_content_path: Option<String>,
    /// Raft timing scale (Consul's raft_multiplier; 1 = 100 ms heartbeats, 0.3–0.6 s elections).
    #[arg(long, value_name = "N")]
    pub raft_multiplier: Option<u64>,
    /// How long an agent may stay silent before the leader turns the checks of its node critical.
    #[arg(long, value_name = "DURATION", value_parser = census_client::parse_duration)]
    pub owner_lease_ttl: Option<std::time::Duration>,
    /// How long a silent agent's node stays in the catalog before the leader removes it.
    #[arg(long, value_name = "DURATION", value_parser = census_client::parse_duration)]
    pub reconnect_timeout: Option<std::time::Duration>,
    /// `kubernetes`: also run the operator (Service and KVEntry reconcilers) while leading.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// With `-platform kubernetes`: reconcile resources of this namespace only (default: all).
    #[arg(long, value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// With `-platform kubernetes`: whether KVEntries may take values from Secrets (default true;
    /// false when the service account may not read them).
    #[arg(long, value_name = "BOOL")]
    pub read_secrets: Option<bool>,
}

/// `ui_config` of an agent config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UiConfigFile {
    pub enabled: Option<bool>,
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Ports {
    pub http: Option<u16>,
    pub dns: Option<i32>,
    pub server: Option<u16>,
}

/// A service definition file: `{"service": {...}}` or `{"services": [...]}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub datacenter: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub node_name: Option<String>,
    pub server: Option<bool>,
    pub bootstrap: Option<bool>,
    pub bootstrap_expect: Option<usize>,
    pub retry_join: Vec<String>,
    pub start_join: Vec<String>,
    pub bind_addr: Option<String>,
    pub advertise_addr: Option<String>,
    pub client_addr: Option<String>,
    pub ports: Ports,
    pub log_level: Option<String>,
    pub enable_script_checks: Option<bool>,
    pub enable_local_script_checks: Option<bool>,
    pub domain: Option<String>,
    pub alt_domain: Option<String>,
    pub recursors: Vec<String>,
    pub dns_config: Option<DnsConfigFile>,
    pub ui: Option<bool>,
    pub ui_dir: Option<PathBuf>,
    pub ui_config: UiConfigFile,
    pub service: Option<serde_json::Value>,
    pub services: Vec<serde_json::Value>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Everything the agent runs with, flags over files over defaults.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub dev: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: usize,
    pub join: Vec<String>,
    pub data_dir: Option<PathBuf>,
    pub node_name: String,
    pub bind: String,
    pub advertise: String,
    pub client: String,
    pub datacenter: String,
    pub http_port: u16,
    pub server_port: u16,
    /// `None`: the DNS interface is off.
    pub dns_port: Option<u16>,
    pub dns: DnsConfig,
    pub log_level: String,
    pub log_file: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub enable_script_checks: bool,
    pub raft_multiplier: u64,
    pub owner_lease_ttl: std::time::Duration,
    pub reconnect_timeout: std::time::Duration,
    /// Serve the web UI: `Some(None)` from the binary, `Some(Some(dir))` from a directory.
    pub ui: Option<Option<PathBuf>>,
    pub services: Vec<AgentServiceRegistration>,
    /// `-platform kubernetes`: run the operator; its namespace (`None`: all).
    pub kubernetes: Option<KubernetesConfig>,
    /// The flags these settings came from, to read the definition files again on reload.
    pub args: AgentArgs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    pub watch_namespace: Option<String>,
    pub read_secrets: bool,
}

/// `HOST` → `HOST:PORT`; `HOST:PORT` and `[v6]:PORT` unchanged.
pub fn with_default_port(addr: &str, port: u16) -> String {
    let has_port = if addr.starts_with('[') { addr.contains("]:") } else { addr.matches(':').count() == 1 };
    if has_port { addr.to_string() } else { format!("{addr}:{port}") }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })
}

/// Reads every `-config-file` and the `.json` files of every `-config-dir`, in order.
pub fn read_config_files(args: &AgentArgs) -> Result<Vec<FileConfig>, ConfigError> {
    let mut files = Vec::new();
    for path in &args.config_file {
        files.push(read_file(path)?);
    }
    for dir in &args.config_dir {
        let entries =
            std::fs::read_dir(dir).map_err(|source| ConfigError::Read { path: dir.clone(), source })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            files.push(read_file(&path)?);
        }
    }
    Ok(files)
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "census".to_string())
}

/// The address this host uses to reach other hosts: the source address of its default route.
/// A UDP "connect" only consults the routing table; nothing is sent.
fn default_route_ip() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then(|| ip.to_string())
}

impl AgentConfig {
    pub fn resolve(args: &AgentArgs, files: &[FileConfig]) -> Result<AgentConfig, ConfigError> {
        let pick = |flag: &Option<String>, f: fn(&FileConfig) -> Option<String>| -> Option<String> {
            flag.clone().or_else(|| files.iter().rev().find_map(f))
        };
        let dev = args.dev;
        let data_dir = args.data_dir.clone().or_else(|| files.iter().rev().find_map(|f| f.data_dir.clone()));
        if !dev && data_dir.is_none() {
            return Err(ConfigError::Invalid(
                "Must specify -data-dir or -dev (the Raft log and snapshots are kept there)".into(),
            ));
        }
        let bootstrap_expect = args
            .bootstrap_expect
            .or_else(|| files.iter().rev().find_map(|f| f.bootstrap_expect))
            .unwrap_or(0);
        let bootstrap = args.bootstrap || files.iter().any(|f| f.bootstrap == Some(true));
        if bootstrap && bootstrap_expect > 1 {
            return Err(ConfigError::Invalid("-bootstrap and -bootstrap-expect cannot both be set".into()));
        }
        let loopback = if dev { Some("127.0.0.1".to_string()) } else { None };
        let bind = pick(&args.bind, |f| f.bind_addr.clone())
            .or(loopback.clone())
            .unwrap_or_else(|| "0.0.0.0".into());
        let advertise = match pick(&args.advertise, |f| f.advertise_addr.clone()) {
            Some(a) => a,
            None if bind != "0.0.0.0" && bind != "::" => bind.clone(),
            None => default_route_ip().unwrap_or_else(|| "127.0.0.1".into()),
        };
        let client = pick(&args.client, |f| f.client_addr.clone()).unwrap_or_else(|| "127.0.0.1".into());
        let server_port = args
            .server_port
            .or_else(|| files.iter().rev().find_map(|f| f.ports.server))
            .unwrap_or(DEFAULT_SERVER_PORT);
        let mut join: Vec<String> = args.retry_join.iter().chain(args.join.iter()).cloned().collect();
        for f in files {
            join.extend(f.retry_join.iter().chain(f.start_join.iter()).cloned());
        }
        let join = join.iter().map(|a| with_default_port(a, DEFAULT_SERVER_PORT)).collect();
        let mut services = Vec::new();
        for f in files {
            for value in f.service.iter().chain(f.services.iter()) {
                let body = serde_json::to_vec(value).map_err(|e| ConfigError::Invalid(e.to_string()))?;
                let reg: AgentServiceRegistration = crate::http::decode::decode_json(&body)
                    .map_err(|e| ConfigError::Invalid(format!("service definition: {e}")))?;
                services.push(reg);
            }
        }
        let flag_or_file = |flag: Option<bool>, f: fn(&FileConfig) -> Option<bool>| {
            flag.or_else(|| files.iter().rev().find_map(f)).unwrap_or(false)
        };
        let node_name = pick(&args.node, |f| f.node_name.clone()).unwrap_or_else(local_hostname);
        let datacenter = pick(&args.datacenter, |f| f.datacenter.clone()).unwrap_or_else(|| "dc1".into());
        let dns = dns_config(args, files, &datacenter, &node_name)?;
        let kubernetes = match args.platform.as_deref() {
            None | Some("" | "none" | "docker") => {
                if args.watch_namespace.is_some() {
                    return Err(ConfigError::Invalid("-watch-namespace needs -platform kubernetes".into()));
                }
                None
            }
            Some("kubernetes" | "k8s") => Some(KubernetesConfig {
                watch_namespace: args.watch_namespace.clone().filter(|ns| !ns.is_empty()),
                read_secrets: args.read_secrets.unwrap_or(true),
            }),
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "unknown -platform {other:?} (kubernetes, docker or none)"
                )));
            }
        };
        Ok(AgentConfig {
            dev,
            bootstrap: bootstrap || dev || bootstrap_expect == 1,
            bootstrap_expect,
            join,
            data_dir: if dev { None } else { data_dir },
            node_name,
            bind,
            advertise,
            client,
            datacenter,
            http_port: args
                .http_port
                .or_else(|| files.iter().rev().find_map(|f| f.ports.http))
                .unwrap_or(DEFAULT_HTTP_PORT),
            server_port,
            dns_port: dns_port(args, files)?,
            dns,
            log_level: pick(&args.log_level, |f| f.log_level.clone()).unwrap_or_else(|| "info".into()),
            log_file: args.log_file.clone(),
            pid_file: args.pid_file.clone(),
            enable_script_checks: flag_or_file(args.enable_script_checks, |f| f.enable_script_checks)
                || flag_or_file(args.enable_local_script_checks, |f| f.enable_local_script_checks),
            raft_multiplier: args.raft_multiplier.unwrap_or(1).max(1),
            owner_lease_ttl: args
                .owner_lease_ttl
                .unwrap_or(std::time::Duration::from_secs(10))
                .max(std::time::Duration::from_millis(500)),
            reconnect_timeout: args.reconnect_timeout.unwrap_or(std::time::Duration::from_secs(72 * 3600)),
            ui: ui_setting(args, files),
            services,
            kubernetes,
            args: args.clone(),
        })
    }
}

/// `-ui`, `-ui-dir`, `ui`, `ui_dir`, `ui_config { enabled, dir }`; `-dev` turns the UI on.
fn ui_setting(args: &AgentArgs, files: &[FileConfig]) -> Option<Option<PathBuf>> {
    let dir = args
        .ui_dir
        .clone()
        .or_else(|| files.iter().rev().find_map(|f| f.ui_config.dir.clone().or_else(|| f.ui_dir.clone())));
    let from_files = files.iter().rev().find_map(|f| f.ui_config.enabled.or(f.ui));
    let enabled = args.ui || args.ui_dir.is_some() || from_files.unwrap_or(args.dev || dir.is_some());
    enabled.then_some(dir)
}

fn dns_port(args: &AgentArgs, files: &[FileConfig]) -> Result<Option<u16>, ConfigError> {
    let port = args.dns_port.or_else(|| files.iter().rev().find_map(|f| f.ports.dns));
    match port {
        None => Ok(Some(DEFAULT_DNS_PORT)),
        Some(p) if p < 0 => Ok(None),
        Some(p) => u16::try_from(p).map(Some).map_err(|_| {
            ConfigError::Invalid(format!("-dns-port {p} is not a port (use -1 to turn DNS off)"))
        }),
    }
}

/// `dns_config` blocks in file order, then `domain`/`alt_domain`/`recursors` (flags win over files).
fn dns_config(
    args: &AgentArgs,
    files: &[FileConfig],
    datacenter: &str,
    node_name: &str,
) -> Result<DnsConfig, ConfigError> {
    let invalid = |e: crate::dns::DnsConfigError| ConfigError::Invalid(e.to_string());
    let mut dns = DnsConfig::new(datacenter, node_name);
    for block in files.iter().filter_map(|f| f.dns_config.as_ref()) {
        dns.apply_file(block).map_err(invalid)?;
    }
    let domain = args.domain.clone().or_else(|| files.iter().rev().find_map(|f| f.domain.clone()));
    let alt = args.alt_domain.clone().or_else(|| files.iter().rev().find_map(|f| f.alt_domain.clone()));
    dns.domains = Domains::new(domain.as_deref().unwrap_or("consul"), alt.as_deref());
    if dns.domains.primary == "." || dns.domains.alt.as_ref() == Some(&dns.domains.primary) {
        return Err(ConfigError::Invalid("-domain must be a name, and -alt-domain a different one".into()));
    }
    dns.add_recursors(args.recursor.iter().chain(files.iter().flat_map(|f| f.recursors.iter())))
        .map_err(invalid)?;
    Ok(dns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_added_only_when_missing() {
        assert_eq!(with_default_port("10.0.0.1", 8300), "10.0.0.1:8300");
        assert_eq!(with_default_port("10.0.0.1:9000", 8300), "10.0.0.1:9000");
        assert_eq!(with_default_port("[::1]:9000", 8300), "[::1]:9000");
    }

    #[test]
    fn dev_needs_no_data_dir_and_bootstraps_alone() {
        let args = AgentArgs { dev: true, ..Default::default() };
        let cfg = AgentConfig::resolve(&args, &[]).expect("dev config");
        assert!(cfg.bootstrap && cfg.data_dir.is_none());
        assert_eq!((cfg.bind.as_str(), cfg.client.as_str()), ("127.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn server_needs_a_data_dir() {
        let err =
            AgentConfig::resolve(&AgentArgs { server: true, ..Default::default() }, &[]).expect_err("no dir");
        assert!(err.to_string().contains("-data-dir"));
    }

    #[test]
    fn seed_service_definition_is_read_from_a_file() {
        let file: FileConfig =
            serde_json::from_str(r#"{"service": {"name": "web", "tags": ["rails"], "port": 80}}"#)
                .expect("parse");
        let args = AgentArgs { dev: true, ..Default::default() };
        let cfg = AgentConfig::resolve(&args, &[file]).expect("resolve");
        assert_eq!(cfg.services.len(), 1);
        assert_eq!((cfg.services[0].name.as_str(), cfg.services[0].port), ("web", 80));
    }

    #[test]
    fn dns_settings_come_from_dns_config_and_flags() {
        let file: FileConfig = serde_json::from_str(
            r#"{"domain": "cluster.local", "recursors": ["9.9.9.9"], "ports": {"dns": 8653},
                "dns_config": {"only_passing": true, "service_ttl": {"*": "5s"}, "a_record_limit": 3}}"#,
        )
        .expect("parse");
        let args = AgentArgs { dev: true, alt_domain: Some("census".into()), ..Default::default() };
        let cfg = AgentConfig::resolve(&args, &[file]).expect("resolve");
        assert_eq!(cfg.dns_port, Some(8653));
        assert_eq!(cfg.dns.domains, Domains::new("cluster.local.", Some("census.")));
        assert!(cfg.dns.only_passing);
        assert_eq!((cfg.dns.service_ttl_for("web"), cfg.dns.a_record_limit), (5, Some(3)));
        assert_eq!(cfg.dns.recursors, ["9.9.9.9:53".parse().expect("addr")]);
        let off = AgentArgs { dev: true, dns_port: Some(-1), ..Default::default() };
        assert_eq!(AgentConfig::resolve(&off, &[]).expect("resolve").dns_port, None);
        let bad: FileConfig = serde_json::from_str(r#"{"dns_config": {"node_ttl": "soon"}}"#).expect("parse");
        assert!(AgentConfig::resolve(&AgentArgs { dev: true, ..Default::default() }, &[bad]).is_err());
    }

    #[test]
    fn the_ui_is_on_with_dev_or_ui_and_off_otherwise() {
        let resolve =
            |args: AgentArgs, files: &[FileConfig]| AgentConfig::resolve(&args, files).expect("resolve").ui;
        let dir = || Some(PathBuf::from("/data"));
        assert_eq!(resolve(AgentArgs { dev: true, ..Default::default() }, &[]), Some(None));
        assert_eq!(resolve(AgentArgs { data_dir: dir(), ..Default::default() }, &[]), None);
        assert_eq!(resolve(AgentArgs { data_dir: dir(), ui: true, ..Default::default() }, &[]), Some(None));
        let ui_dir = AgentArgs { data_dir: dir(), ui_dir: Some("/srv/ui".into()), ..Default::default() };
        assert_eq!(resolve(ui_dir, &[]), Some(Some(PathBuf::from("/srv/ui"))));
        let on: FileConfig = serde_json::from_str(r#"{"ui_config": {"enabled": true}}"#).expect("parse");
        assert_eq!(resolve(AgentArgs { data_dir: dir(), ..Default::default() }, &[on]), Some(None));
        let off: FileConfig = serde_json::from_str(r#"{"ui": false}"#).expect("parse");
        assert_eq!(resolve(AgentArgs { dev: true, ..Default::default() }, &[off]), None);
    }
}
