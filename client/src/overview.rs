//! The overview endpoints Consul's web UI reads (`/v1/internal/ui/*`) and autopilot's server health.

use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;
use crate::types::{AgentService, HealthCheck, Meta};

/// One service name of `GET /v1/internal/ui/services`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UiService {
    pub kind: String,
    pub name: String,
    pub datacenter: String,
    pub tags: Vec<String>,
    pub nodes: Vec<String>,
    pub instance_count: u32,
    pub checks_passing: u32,
    pub checks_warning: u32,
    pub checks_critical: u32,
}

/// One node of `GET /v1/internal/ui/nodes`, with what runs on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UiNode {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: Meta,
    pub meta: Meta,
    pub services: Vec<AgentService>,
    pub checks: Vec<HealthCheck>,
}

/// One server of `GET /v1/operator/autopilot/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotServer {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub address: String,
    /// `alive` when the server answered, `failed` when it did not.
    pub serf_status: String,
    pub version: String,
    pub leader: bool,
    /// Since the server last heard from the leader, as a Go duration (`0s` on the leader).
    pub last_contact: String,
    pub last_term: u64,
    pub last_index: u64,
    /// census: the last log index the server has applied to its catalog.
    pub applied_index: u64,
    pub healthy: bool,
    pub voter: bool,
}

/// `GET /v1/operator/autopilot/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotHealth {
    pub healthy: bool,
    pub failure_tolerance: u32,
    pub servers: Vec<AutopilotServer>,
}

/// `/v1/operator/autopilot/configuration`; absent fields take Consul's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AutopilotConfiguration {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold: GoDuration,
    pub max_trailing_logs: u64,
    pub min_quorum: u32,
    pub server_stabilization_time: GoDuration,
    pub redundancy_zone_tag: String,
    pub disable_upgrade_migration: bool,
    pub upgrade_version_tag: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Default for AutopilotConfiguration {
    fn default() -> Self {
        AutopilotConfiguration {
            cleanup_dead_servers: true,
            last_contact_threshold: GoDuration(std::time::Duration::from_millis(200)),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: GoDuration(std::time::Duration::from_secs(10)),
            redundancy_zone_tag: String::new(),
            disable_upgrade_migration: false,
            upgrade_version_tag: String::new(),
            create_index: 0,
            modify_index: 0,
        }
    }
}
