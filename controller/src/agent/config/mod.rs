//! `census agent` configuration: flags (args.rs), config sources (file.rs, strict as Consul's:
//! keys.rs says what census does with each key Consul knows), and how they combine: flags over
//! files over the environment over defaults.

mod args;
mod file;
pub mod keys;
pub mod paths;
pub mod table;

use std::path::PathBuf;

use census_client::types::AgentServiceRegistration;

pub use self::args::AgentArgs;
pub use self::file::{
    ConfigSource, DATA_DIR_VAR, FileConfig, LOCAL_CONFIG_VARS, Performance, Ports, UiConfigFile,
    read_config_files, read_sources,
};
use crate::dns::DnsConfig;
use crate::dns::name::Domains;

pub const DEFAULT_SERVER_PORT: u16 = 8300;
pub const DEFAULT_SERF_LAN_PORT: u16 = 8301;
pub const DEFAULT_HTTP_PORT: u16 = 8500;
pub const DEFAULT_DNS_PORT: u16 = 8600;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {origin}: {source}")]
    Read { origin: ConfigSource, source: std::io::Error },
    #[error("failed to parse {origin}: {source}")]
    Parse { origin: ConfigSource, source: serde_json::Error },
    #[error("failed to parse {origin}: an agent config must be a JSON object")]
    NotAnObject { origin: ConfigSource },
    /// Consul's wording: `failed to parse x.json: 1 error occurred:\n\t* invalid config key foo`.
    #[error("failed to parse {origin}: {}", error_list(.keys.iter().map(|k| format!("invalid config key {k}"))))]
    UnknownKeys { origin: ConfigSource, keys: Vec<String> },
    #[error("{origin}: census cannot honour {}", error_list(.settings.iter().map(|(k, why)| format!("{k}: {why}"))))]
    Refused { origin: ConfigSource, settings: Vec<(String, &'static str)> },
    #[error("failed to parse {origin}: invalid value for config key {key}: {source}")]
    InvalidValue { origin: ConfigSource, key: String, source: serde_json::Error },
    #[error("{origin}: census reads JSON agent config only; write this HCL file as JSON")]
    Hcl { origin: ConfigSource },
    #[error("{0}")]
    Invalid(String),
}

/// `N error(s) occurred:` and one `\t* ` line each, as Consul's multierror prints them.
fn error_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    let n = items.len();
    let mut out = format!("{n} {} occurred:", if n == 1 { "error" } else { "errors" });
    for item in items {
        out.push_str("\n\t* ");
        out.push_str(&item);
    }
    out
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
    pub serf_lan_port: u16,
    /// Gossip encryption: the `-encrypt` key and whether datagrams must be / are sealed.
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: bool,
    pub encrypt_verify_outgoing: bool,
    pub anti_entropy_interval: std::time::Duration,
    /// `None`: the DNS interface is off.
    pub dns_port: Option<u16>,
    pub dns: DnsConfig,
    pub log_level: String,
    /// The file the log also goes to (`-log-file` resolved: `census.log` in a directory).
    pub log_file: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// Declared a server (`-server`, `-dev` or `"server": true`): sets the leave defaults.
    pub server: bool,
    /// SIGINT stops the agent without leaving (Consul: default true on servers).
    pub skip_leave_on_interrupt: bool,
    /// SIGTERM makes the agent leave before stopping (Consul: default true on non-servers).
    pub leave_on_terminate: bool,
    pub enable_script_checks: bool,
    pub raft_multiplier: u64,
    /// `-raft-election-timeout`: when set, it, not the multiplier, sets Raft's timing.
    pub raft_election_timeout: Option<std::time::Duration>,
    /// Free space kept in reserve under the Raft log (`-raft-min-free-bytes`).
    pub raft_min_free_bytes: u64,
    pub owner_lease_ttl: std::time::Duration,
    pub reconnect_timeout: std::time::Duration,
    /// Serve the web UI: `Some(None)` from the binary, `Some(Some(dir))` from a directory.
    pub ui: Option<Option<PathBuf>>,
    /// The URL path of the UI (always `/ui/`: other paths are refused).
    pub ui_content_path: String,
    pub services: Vec<AgentServiceRegistration>,
    /// `-platform kubernetes`: run the operator; its namespace (`None`: all).
    pub kubernetes: Option<KubernetesConfig>,
    /// The flags these settings came from, to read the definition files again on reload.
    pub args: AgentArgs,
    /// To log once at start: config keys with no effect in census, skipped files.
    pub warnings: Vec<String>,
    /// The `acl` block, later files over earlier ones.
    pub acl: crate::acl::AclConfig,
    /// The `tls` block (and the older top-level TLS keys), `ports.https`.
    pub tls: crate::tls::TlsConfig,
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
            return Err(ConfigError::Invalid(format!(
                "Must specify -data-dir or -dev (the Raft log and snapshots are kept there; \
                 also data_dir in a config file, or ${DATA_DIR_VAR})"
            )));
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
        let serf_lan_port = args
            .serf_lan_port
            .or_else(|| files.iter().rev().find_map(|f| f.ports.serf_lan))
            .unwrap_or(DEFAULT_SERF_LAN_PORT);
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
        let tls = tls_config(files, &datacenter, &dns.domains.primary)?;
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
        let raft_multiplier = args
            .raft_multiplier
            .or_else(|| files.iter().rev().find_map(|f| f.performance.raft_multiplier))
            .unwrap_or(1);
        if !(1..=10).contains(&raft_multiplier) {
            return Err(ConfigError::Invalid(format!(
                "performance.raft_multiplier cannot be {raft_multiplier}. Must be between 1 and 10"
            )));
        }
        let raft_election_timeout = args.raft_election_timeout;
        if let Some(t) = raft_election_timeout
            && !(std::time::Duration::from_millis(30)..=std::time::Duration::from_secs(10)).contains(&t)
        {
            return Err(ConfigError::Invalid(format!(
                "-raft-election-timeout cannot be {t:?}. Must be between 30ms and 10s"
            )));
        }
        let reconnect_timeout = match args.reconnect_timeout {
            Some(t) => t,
            None => match files.iter().rev().find_map(|f| f.reconnect_timeout.as_deref()) {
                Some(text) => census_client::parse_duration(text)
                    .map_err(|e| ConfigError::Invalid(format!("reconnect_timeout: {e}")))?,
                None => std::time::Duration::from_secs(72 * 3600),
            },
        };
        let log_file =
            match args.log_file.clone().or_else(|| files.iter().rev().find_map(|f| f.log_file.clone())) {
                Some(path) => Some(paths::log_file(&path)?),
                None => None,
            };
        let content_path = args.ui_content_path.clone().or_else(|| {
            files
                .iter()
                .rev()
                .find_map(|f| f.ui_config.content_path.clone().or_else(|| f.ui_content_path.clone()))
        });
        let ui_content_path = paths::ui_content_path(content_path.as_deref());
        paths::check_ui_content_path(&ui_content_path)?;
        let server = args.server || dev || files.iter().rev().find_map(|f| f.server) == Some(true);
        let mut warnings: Vec<String> = Vec::new();
        for w in files.iter().flat_map(|f| f.warnings.iter()) {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
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
            serf_lan_port,
            encrypt: pick(&args.encrypt, |f| f.encrypt.clone()).filter(|k| !k.is_empty()),
            encrypt_verify_incoming: files
                .iter()
                .rev()
                .find_map(|f| f.encrypt_verify_incoming)
                .unwrap_or(true),
            encrypt_verify_outgoing: files
                .iter()
                .rev()
                .find_map(|f| f.encrypt_verify_outgoing)
                .unwrap_or(true),
            dns_port: dns_port(args, files)?,
            acl: acl_config(files)?,
            tls,
            dns,
            log_level: pick(&args.log_level, |f| f.log_level.clone()).unwrap_or_else(|| "info".into()),
            log_file,
            pid_file: args.pid_file.clone().or_else(|| files.iter().rev().find_map(|f| f.pid_file.clone())),
            server,
            skip_leave_on_interrupt: files
                .iter()
                .rev()
                .find_map(|f| f.skip_leave_on_interrupt)
                .unwrap_or(server),
            leave_on_terminate: files.iter().rev().find_map(|f| f.leave_on_terminate).unwrap_or(!server),
            enable_script_checks: flag_or_file(args.enable_script_checks, |f| f.enable_script_checks)
                || flag_or_file(args.enable_local_script_checks, |f| f.enable_local_script_checks),
            raft_multiplier,
            raft_election_timeout,
            raft_min_free_bytes: args
                .raft_min_free_bytes
                .unwrap_or(crate::raft::disk_space::DEFAULT_MIN_FREE_BYTES),
            owner_lease_ttl: args
                .owner_lease_ttl
                .unwrap_or(std::time::Duration::from_secs(10))
                .max(std::time::Duration::from_millis(500)),
            reconnect_timeout,
            anti_entropy_interval: args
                .anti_entropy_interval
                .unwrap_or(std::time::Duration::from_secs(60))
                .max(std::time::Duration::from_millis(100)),
            ui: ui_setting(args, files),
            ui_content_path,
            services,
            kubernetes,
            args: args.clone(),
            warnings,
        })
    }
}

/// `-ui`, `-ui-dir`, `ui`, `ui_dir`, `ui_config { enabled, dir }`; `-dev` turns the UI on.
/// TLS settings: the older top-level keys, then `tls.defaults`, then each listener's own block,
/// every source in order (later over earlier).
fn tls_config(
    files: &[FileConfig],
    datacenter: &str,
    domain: &str,
) -> Result<crate::tls::TlsConfig, ConfigError> {
    use self::file::TlsBlock;
    use crate::tls::TlsSettings;
    fn overlay(into: &mut TlsSettings, block: &TlsBlock) {
        if let Some(v) = &block.ca_file {
            into.ca_file = Some(v.clone());
        }
        if let Some(v) = &block.cert_file {
            into.cert_file = Some(v.clone());
        }
        if let Some(v) = &block.key_file {
            into.key_file = Some(v.clone());
        }
        if let Some(v) = block.verify_incoming {
            into.verify_incoming = v;
        }
        if let Some(v) = block.verify_outgoing {
            into.verify_outgoing = v;
        }
        if let Some(v) = block.verify_server_hostname {
            into.verify_server_hostname = v;
        }
    }
    let mut defaults = TlsSettings::default();
    for f in files {
        let legacy = TlsBlock {
            ca_file: f.ca_file.clone(),
            cert_file: f.cert_file.clone(),
            key_file: f.key_file.clone(),
            verify_incoming: f.verify_incoming,
            verify_outgoing: f.verify_outgoing,
            verify_server_hostname: None,
        };
        overlay(&mut defaults, &legacy);
        if let Some(tls) = &f.tls {
            overlay(&mut defaults, &tls.defaults);
        }
    }
    let (mut internal_rpc, mut https) = (defaults.clone(), defaults);
    for f in files {
        if let Some(v) = f.verify_incoming_rpc {
            internal_rpc.verify_incoming = v;
        }
        if let Some(v) = f.verify_server_hostname {
            internal_rpc.verify_server_hostname = v;
        }
        if let Some(v) = f.verify_incoming_https {
            https.verify_incoming = v;
        }
        if let Some(tls) = &f.tls {
            overlay(&mut internal_rpc, &tls.internal_rpc);
            overlay(&mut https, &tls.https);
        }
    }
    let invalid = |e: crate::tls::TlsError| ConfigError::Invalid(e.to_string());
    internal_rpc.check("tls.internal_rpc").map_err(invalid)?;
    if internal_rpc.enabled() && internal_rpc.ca_file.is_none() {
        return Err(ConfigError::Invalid("tls.internal_rpc: TLS on the server port needs a ca_file".into()));
    }
    let https_port = files.iter().rev().find_map(|f| f.ports.https).filter(|p| *p > 0);
    if https_port.is_some() {
        https.check("tls.https").map_err(invalid)?;
        if !https.has_certificate() {
            return Err(ConfigError::Invalid("ports.https needs cert_file and key_file".into()));
        }
    }
    Ok(crate::tls::TlsConfig {
        internal_rpc,
        https,
        https_port,
        server_name: format!("server.{datacenter}.{}", domain.trim_end_matches('.')),
    })
}

/// The `acl` blocks of every source, later ones over earlier ones key by key.
fn acl_config(files: &[FileConfig]) -> Result<crate::acl::AclConfig, ConfigError> {
    use crate::acl::DefaultPolicy;
    let mut config = crate::acl::AclConfig::default();
    for acl in files.iter().filter_map(|f| f.acl.as_ref()) {
        if let Some(enabled) = acl.enabled {
            config.enabled = enabled;
        }
        match acl.default_policy.as_deref() {
            None => {}
            Some("allow") => config.default_policy = DefaultPolicy::Allow,
            Some("deny") => config.default_policy = DefaultPolicy::Deny,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "acl.default_policy must be \"allow\" or \"deny\", not {other:?}"
                )));
            }
        }
        if let Some(list) = acl.enable_key_list_policy {
            config.enable_key_list_policy = list;
        }
        if let Some(persist) = acl.enable_token_persistence {
            config.enable_token_persistence = persist;
        }
        let t = &acl.tokens;
        let mut set = |kind: &str, value: &Option<String>| {
            if let Some(v) = value {
                config.tokens.set(kind, v.clone());
            }
        };
        set("default", &t.default);
        set("agent", &t.agent);
        set("agent_recovery", &t.agent_master);
        set("agent_recovery", &t.agent_recovery);
        set("replication", &t.replication);
        set("config_file_service_registration", &t.config_file_service_registration);
        if let Some(v) = t.initial_management.as_ref().or(t.master.as_ref()) {
            config.tokens.initial_management = v.clone();
        }
    }
    Ok(config)
}

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
mod tests;
