//! The catalog's rows. Every row carries the Raft log index that created it and last changed it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Health of a check. Ordered from best to worst, so `max` is the aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CheckStatus {
    Passing,
    Warning,
    Critical,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }

    /// Reads Consul's status words; anything else is `None`.
    pub fn parse(s: &str) -> Option<CheckStatus> {
        match s.to_ascii_lowercase().as_str() {
            "passing" => Some(CheckStatus::Passing),
            "warning" => Some(CheckStatus::Warning),
            "critical" => Some(CheckStatus::Critical),
            _ => None,
        }
    }
}

/// Where a node or service runs: region and zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locality {
    pub region: String,
    pub zone: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub name: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub locality: Option<Locality>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub passing: u32,
    pub warning: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { passing: 1, warning: 1 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaggedAddress {
    pub address: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub node: String,
    pub id: String,
    pub name: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, TaggedAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub socket_path: String,
    pub weights: Weights,
    pub enable_tag_override: bool,
    /// A proxy's configuration as JSON, kept as registered ("" for none).
    pub proxy: String,
    /// A Connect-native service.
    pub connect_native: bool,
    pub locality: Option<Locality>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// What a check probes. `Recorded` checks have no definition: their status is whatever was
/// written (catalog register, maintenance).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckKind {
    #[default]
    Recorded,
    Http {
        url: String,
        method: String,
        header: BTreeMap<String, Vec<String>>,
        body: String,
        tls_skip_verify: bool,
        tls_server_name: String,
        disable_redirects: bool,
    },
    Tcp {
        address: String,
        use_tls: bool,
    },
    Udp {
        address: String,
    },
    Ttl {
        ttl_ms: u64,
    },
    /// `grpc.health.v1.Health/Check` of `service` ("" = the server) at `address`.
    Grpc {
        address: String,
        service: String,
        use_tls: bool,
    },
    /// An HTTP/2 PING to `address`.
    H2Ping {
        address: String,
        use_tls: bool,
    },
    /// Runs `args` (only on agents started with `-enable-script-checks`): exit 0 passing,
    /// 1 warning, anything else critical.
    Script {
        args: Vec<String>,
    },
    /// Runs `args` (or `shell -c` of them) inside a Docker container.
    Docker {
        container_id: String,
        shell: String,
        args: Vec<String>,
    },
    /// Mirrors the health of another service instance (or of a whole node).
    Alias {
        node: String,
        service: String,
    },
    /// The state of an operating-system service (a systemd unit).
    OsService {
        name: String,
    },
}

impl CheckKind {
    /// Consul's `Type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Recorded => "",
            CheckKind::Http { .. } => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Udp { .. } => "udp",
            CheckKind::Ttl { .. } => "ttl",
            CheckKind::Grpc { .. } => "grpc",
            CheckKind::H2Ping { .. } => "h2ping",
            CheckKind::Script { .. } => "script",
            CheckKind::Docker { .. } => "docker",
            CheckKind::Alias { .. } => "alias",
            CheckKind::OsService { .. } => "os_service",
        }
    }
}

/// What an agent needs to run a check; stored with the check so any restart resumes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub kind: CheckKind,
    /// Registered through the catalog: its status is written from outside and census never
    /// runs it, whatever its definition says.
    pub external: bool,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub deregister_critical_after_ms: u64,
    pub output_max_size: u64,
    /// Consecutive passing results before the status turns passing (0 and 1: at once).
    pub success_before_passing: u64,
    /// Consecutive failures before the status turns warning (0: as for critical).
    pub failures_before_warning: u64,
    /// Consecutive failures before the status turns critical (0 and 1: at once).
    pub failures_before_critical: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub node: String,
    pub id: String,
    pub name: String,
    pub status: CheckStatus,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub spec: CheckSpec,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRecord {
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
    pub lock_index: u64,
    pub session: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}
