//! DNS settings: Consul's `dns_config` block, `domain`, `alt_domain`, `recursors`, and their flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use census_client::duration::parse_duration;
use serde::Deserialize;

use super::name::Domains;

#[derive(Debug, thiserror::Error)]
pub enum DnsConfigError {
    #[error("dns_config.{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("recursor {addr:?} is not an IP address with an optional port")]
    Recursor { addr: String },
}

/// `dns_config` as Consul's agent config spells it. Keys census accepts but does not act on
/// (it always answers from the local catalog) are listed so that Consul configs load unchanged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfigFile {
    pub node_ttl: Option<String>,
    pub service_ttl: BTreeMap<String, String>,
    pub only_passing: Option<bool>,
    pub a_record_limit: Option<usize>,
    pub udp_answer_limit: Option<usize>,
    pub enable_truncate: Option<bool>,
    pub recursor_strategy: Option<String>,
    pub recursor_timeout: Option<String>,
    pub soa: Option<SoaFile>,
    pub allow_stale: Option<bool>,
    pub max_stale: Option<String>,
    pub use_cache: Option<bool>,
    pub cache_max_age: Option<String>,
    pub disable_compression: Option<bool>,
    pub enable_additional_node_meta_txt: Option<bool>,
    pub prefer_namespace: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoaFile {
    pub expire: Option<u32>,
    pub min_ttl: Option<u32>,
    pub refresh: Option<u32>,
    pub retry: Option<u32>,
}

/// The SOA timers, in seconds (Consul's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Soa {
    pub expire: u32,
    pub min_ttl: u32,
    pub refresh: u32,
    pub retry: u32,
}

impl Default for Soa {
    fn default() -> Self {
        Soa { expire: 86400, min_ttl: 0, refresh: 3600, retry: 600 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecursorStrategy {
    /// Ask the recursors in order, moving on after a failure.
    #[default]
    Sequential,
    /// Start at a random recursor each time.
    Random,
}

/// Everything the DNS server answers with.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub domains: Domains,
    pub datacenter: String,
    /// This agent's node: the SOA's primary name server.
    pub node_name: String,
    pub node_ttl: u32,
    /// Service name (or `prefix*`, or `*`) → TTL in seconds.
    pub service_ttl: BTreeMap<String, u32>,
    pub only_passing: bool,
    /// At most this many A/AAAA answers (after shuffling).
    pub a_record_limit: Option<usize>,
    /// At most this many answers over UDP (Consul's deprecated `udp_answer_limit`).
    pub udp_answer_limit: Option<usize>,
    pub soa: Soa,
    pub recursors: Vec<SocketAddr>,
    pub recursor_strategy: RecursorStrategy,
    pub recursor_timeout: Duration,
    /// On a client agent: a server may answer from its own state (else the leader answers)...
    pub allow_stale: bool,
    /// ...if it heard from the leader at most this long ago (Consul: 87600h, so always).
    pub max_stale: Duration,
}

impl DnsConfig {
    /// Defaults: domain `consul.`, TTL 0, no recursors.
    pub fn new(datacenter: &str, node_name: &str) -> DnsConfig {
        DnsConfig {
            domains: Domains::new("consul", None),
            datacenter: datacenter.to_ascii_lowercase(),
            node_name: node_name.to_string(),
            node_ttl: 0,
            service_ttl: BTreeMap::new(),
            only_passing: false,
            a_record_limit: None,
            udp_answer_limit: None,
            soa: Soa::default(),
            recursors: Vec::new(),
            recursor_strategy: RecursorStrategy::Sequential,
            recursor_timeout: Duration::from_secs(2),
            allow_stale: true,
            max_stale: Duration::from_secs(87600 * 3600),
        }
    }

    /// Applies a `dns_config` block over the current values.
    pub fn apply_file(&mut self, file: &DnsConfigFile) -> Result<(), DnsConfigError> {
        if let Some(ttl) = &file.node_ttl {
            self.node_ttl = ttl_seconds("node_ttl", ttl)?;
        }
        for (name, ttl) in &file.service_ttl {
            self.service_ttl.insert(name.to_ascii_lowercase(), ttl_seconds("service_ttl", ttl)?);
        }
        if let Some(only) = file.only_passing {
            self.only_passing = only;
        }
        if file.a_record_limit.is_some() {
            self.a_record_limit = file.a_record_limit.filter(|n| *n > 0);
        }
        if file.udp_answer_limit.is_some() {
            self.udp_answer_limit = file.udp_answer_limit.filter(|n| *n > 0);
        }
        if let Some(strategy) = &file.recursor_strategy {
            self.recursor_strategy = match strategy.as_str() {
                "sequential" => RecursorStrategy::Sequential,
                "random" => RecursorStrategy::Random,
                other => {
                    return Err(DnsConfigError::Field {
                        field: "recursor_strategy",
                        reason: format!("{other:?} is neither \"sequential\" nor \"random\""),
                    });
                }
            };
        }
        if let Some(timeout) = &file.recursor_timeout {
            self.recursor_timeout = parse_duration(timeout)
                .map_err(|e| DnsConfigError::Field { field: "recursor_timeout", reason: e.to_string() })?;
        }
        if let Some(max_stale) = &file.max_stale {
            let d = parse_duration(max_stale)
                .map_err(|e| DnsConfigError::Field { field: "max_stale", reason: e.to_string() })?;
            self.max_stale = d;
        }
        if let Some(allow) = file.allow_stale {
            self.allow_stale = allow;
        }
        if let Some(soa) = &file.soa {
            self.soa.expire = soa.expire.unwrap_or(self.soa.expire);
            self.soa.min_ttl = soa.min_ttl.unwrap_or(self.soa.min_ttl);
            self.soa.refresh = soa.refresh.unwrap_or(self.soa.refresh);
            self.soa.retry = soa.retry.unwrap_or(self.soa.retry);
        }
        Ok(())
    }

    /// Adds recursors: `IP` (port 53) or `IP:PORT` / `[IPv6]:PORT`.
    pub fn add_recursors<'a>(
        &mut self,
        addrs: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), DnsConfigError> {
        for addr in addrs {
            let parsed = addr
                .parse::<SocketAddr>()
                .or_else(|_| addr.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| DnsConfigError::Recursor { addr: addr.clone() })?;
            if !self.recursors.contains(&parsed) {
                self.recursors.push(parsed);
            }
        }
        Ok(())
    }

    /// TTL for a service: its own entry, else the longest matching `prefix*`, else `*`, else 0.
    pub fn service_ttl_for(&self, service: &str) -> u32 {
        let service = service.to_ascii_lowercase();
        if let Some(ttl) = self.service_ttl.get(&service) {
            return *ttl;
        }
        self.service_ttl
            .iter()
            .filter_map(|(pattern, ttl)| {
                let prefix = pattern.strip_suffix('*')?;
                service.starts_with(prefix).then_some((prefix.len(), *ttl))
            })
            .max_by_key(|(len, _)| *len)
            .map_or(0, |(_, ttl)| ttl)
    }
}

fn ttl_seconds(field: &'static str, text: &str) -> Result<u32, DnsConfigError> {
    let d = parse_duration(text).map_err(|e| DnsConfigError::Field { field, reason: e.to_string() })?;
    u32::try_from(d.as_secs()).map_err(|_| DnsConfigError::Field { field, reason: "too long".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ttl_prefers_exact_then_longest_prefix_then_wildcard() {
        let mut cfg = DnsConfig::new("dc1", "n1");
        let file: DnsConfigFile = serde_json::from_str(
            r#"{"service_ttl": {"*": "5s", "web*": "10s", "web-api*": "20s", "db": "1m"}, "node_ttl": "30s"}"#,
        )
        .expect("parse");
        cfg.apply_file(&file).expect("apply");
        assert_eq!(cfg.service_ttl_for("db"), 60);
        assert_eq!(cfg.service_ttl_for("DB"), 60);
        assert_eq!(cfg.service_ttl_for("web-api-v2"), 20);
        assert_eq!(cfg.service_ttl_for("webby"), 10);
        assert_eq!(cfg.service_ttl_for("cache"), 5);
        assert_eq!(cfg.node_ttl, 30);
        assert_eq!(DnsConfig::new("dc1", "n1").service_ttl_for("web"), 0);
    }

    #[test]
    fn bad_values_are_named() {
        let mut cfg = DnsConfig::new("dc1", "n1");
        let file: DnsConfigFile = serde_json::from_str(r#"{"node_ttl": "ten"}"#).expect("parse");
        assert!(cfg.apply_file(&file).expect_err("bad ttl").to_string().contains("node_ttl"));
        assert!(serde_json::from_str::<DnsConfigFile>(r#"{"nodettl": "1s"}"#).is_err());
        let err = cfg.add_recursors(&["dns.example".to_string()]).expect_err("not an ip");
        assert!(err.to_string().contains("dns.example"));
        cfg.add_recursors(&["8.8.8.8".to_string(), "127.0.0.1:5353".to_string()]).expect("ok");
        assert_eq!(cfg.recursors[0].port(), 53);
        assert_eq!(cfg.recursors[1].port(), 5353);
    }
}
