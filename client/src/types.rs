//! Consul's JSON wire types, field for field (PascalCase, maps where Consul uses maps).
//!
//! Every struct reads with defaults for absent fields, so partial bodies from any Consul client decode.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;

pub type Meta = BTreeMap<String, String>;

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// `Weights` of a service: SRV weight by health state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Weights {
    pub passing: u32,
    pub warning: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { passing: 1, warning: 1 }
    }
}

/// An explicit address for one network (`lan`, `wan`, …) of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceAddress {
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Port")]
    pub port: u16,
}

/// A check definition as accepted by `/v1/agent/check/register` and inside a service registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckDefinition {
    #[serde(rename = "ID", alias = "CheckID", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "Name", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Notes", skip_serializing_if = "String::is_empty")]
    pub notes: String,
    #[serde(rename = "ServiceID", skip_serializing_if = "String::is_empty")]
    pub service_id: String,
    #[serde(rename = "Status", skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(rename = "HTTP", skip_serializing_if = "String::is_empty")]
    pub http: String,
    #[serde(rename = "Method", skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(rename = "Header", skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Body", skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    #[serde(rename = "TLSServerName", skip_serializing_if = "String::is_empty")]
    pub tls_server_name: String,
    #[serde(rename = "TCP", skip_serializing_if = "String::is_empty")]
    pub tcp: String,
    #[serde(rename = "GRPC", skip_serializing_if = "String::is_empty")]
    pub grpc: String,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: bool,
    #[serde(rename = "TTL", skip_serializing_if = "GoDuration::is_zero")]
    pub ttl: GoDuration,
    #[serde(rename = "Args", alias = "ScriptArgs", skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(rename = "Script", skip_serializing_if = "String::is_empty")]
    pub script: String,
    #[serde(rename = "Interval", skip_serializing_if = "GoDuration::is_zero")]
    pub interval: GoDuration,
    #[serde(rename = "Timeout", skip_serializing_if = "GoDuration::is_zero")]
    pub timeout: GoDuration,
    #[serde(rename = "DeregisterCriticalServiceAfter", skip_serializing_if = "GoDuration::is_zero")]
    pub deregister_critical_service_after: GoDuration,
    #[serde(rename = "OutputMaxSize", skip_serializing_if = "is_zero_u64")]
    pub output_max_size: u64,
    #[serde(rename = "SuccessBeforePassing", skip_serializing_if = "is_zero_u64")]
    pub success_before_passing: u64,
    #[serde(rename = "FailuresBeforeWarning", skip_serializing_if = "is_zero_u64")]
    pub failures_before_warning: u64,
    #[serde(rename = "FailuresBeforeCritical", skip_serializing_if = "is_zero_u64")]
    pub failures_before_critical: u64,
}

/// Body of `PUT /v1/agent/service/register`, and the `service` of a definition file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentServiceRegistration {
    #[serde(rename = "ID", skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `Service` is the key in a catalog registration (Consul's NodeService); `Name` in the agent's.
    #[serde(rename = "Name", alias = "Service")]
    pub name: String,
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(rename = "Address", skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(rename = "TaggedAddresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "Meta", skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: Meta,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Kind", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(rename = "EnableTagOverride")]
    pub enable_tag_override: bool,
    #[serde(rename = "Weights", skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(rename = "Check", skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDefinition>,
    #[serde(rename = "Checks", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDefinition>,
}

/// A service as `/v1/agent/services` and `/v1/catalog/node/:node` show it (name key is `Service`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentService {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "Tags")]
    pub tags: Vec<String>,
    #[serde(rename = "Meta")]
    pub meta: Meta,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "TaggedAddresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "Weights")]
    pub weights: Weights,
    #[serde(rename = "EnableTagOverride")]
    pub enable_tag_override: bool,
    #[serde(rename = "Datacenter", skip_serializing_if = "String::is_empty")]
    pub datacenter: String,
    #[serde(rename = "CreateIndex", skip_serializing_if = "is_zero_u64")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", skip_serializing_if = "is_zero_u64")]
    pub modify_index: u64,
}

/// A node as `/v1/catalog/nodes` and `/v1/health/service` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses")]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(rename = "Meta")]
    pub meta: Meta,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// `GET /v1/catalog/service/:name` row: node fields plus flat `Service*` fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogService {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses")]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(rename = "NodeMeta")]
    pub node_meta: Meta,
    #[serde(rename = "ServiceKind")]
    pub service_kind: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "ServiceTags")]
    pub service_tags: Vec<String>,
    #[serde(rename = "ServiceAddress")]
    pub service_address: String,
    #[serde(rename = "ServiceTaggedAddresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub service_tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "ServiceWeights")]
    pub service_weights: Weights,
    #[serde(rename = "ServiceMeta")]
    pub service_meta: Meta,
    #[serde(rename = "ServicePort")]
    pub service_port: u16,
    #[serde(rename = "ServiceEnableTagOverride")]
    pub service_enable_tag_override: bool,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// A health check as the health and agent endpoints show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "Notes")]
    pub notes: String,
    #[serde(rename = "Output")]
    pub output: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "ServiceTags")]
    pub service_tags: Vec<String>,
    #[serde(rename = "Type")]
    pub check_type: String,
    #[serde(rename = "Interval", skip_serializing_if = "String::is_empty")]
    pub interval: String,
    #[serde(rename = "Timeout", skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    #[serde(rename = "CreateIndex", skip_serializing_if = "is_zero_u64")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", skip_serializing_if = "is_zero_u64")]
    pub modify_index: u64,
}

/// The `Service` part of a `/v1/health/service/:name` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthService {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "Tags")]
    pub tags: Vec<String>,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "TaggedAddresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "Meta")]
    pub meta: Meta,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Weights")]
    pub weights: Weights,
    #[serde(rename = "EnableTagOverride")]
    pub enable_tag_override: bool,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// One entry of `/v1/health/service/:name`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceEntry {
    #[serde(rename = "Node")]
    pub node: Node,
    #[serde(rename = "Service")]
    pub service: HealthService,
    #[serde(rename = "Checks")]
    pub checks: Vec<HealthCheck>,
}

/// `GET /v1/catalog/node/:node`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogNode {
    #[serde(rename = "Node")]
    pub node: Node,
    #[serde(rename = "Services")]
    pub services: BTreeMap<String, AgentService>,
}

/// Body of `PUT /v1/catalog/register`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogRegistration {
    #[serde(rename = "ID", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Datacenter", skip_serializing_if = "String::is_empty")]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(rename = "NodeMeta", skip_serializing_if = "BTreeMap::is_empty")]
    pub node_meta: Meta,
    #[serde(rename = "Service", skip_serializing_if = "Option::is_none")]
    pub service: Option<AgentServiceRegistration>,
    #[serde(rename = "Check", skip_serializing_if = "Option::is_none")]
    pub check: Option<CatalogCheck>,
    #[serde(rename = "Checks", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CatalogCheck>,
    #[serde(rename = "SkipNodeUpdate")]
    pub skip_node_update: bool,
}

/// A check inside a catalog registration: a status to record, not a check to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogCheck {
    #[serde(rename = "Node", skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(rename = "CheckID", alias = "ID")]
    pub check_id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "Notes", skip_serializing_if = "String::is_empty")]
    pub notes: String,
    #[serde(rename = "Output", skip_serializing_if = "String::is_empty")]
    pub output: String,
    #[serde(rename = "ServiceID", skip_serializing_if = "String::is_empty")]
    pub service_id: String,
}

/// Body of `PUT /v1/catalog/deregister`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogDeregistration {
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Datacenter", skip_serializing_if = "String::is_empty")]
    pub datacenter: String,
    #[serde(rename = "ServiceID", skip_serializing_if = "String::is_empty")]
    pub service_id: String,
    #[serde(rename = "CheckID", skip_serializing_if = "String::is_empty")]
    pub check_id: String,
}

/// A KV entry as `GET /v1/kv/:key` returns it (`Value` base64).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KvPair {
    #[serde(rename = "LockIndex")]
    pub lock_index: u64,
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Flags")]
    pub flags: u64,
    #[serde(rename = "Value")]
    pub value: Option<String>,
    #[serde(rename = "Session", skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl KvPair {
    /// The decoded value bytes (empty when the key holds no value).
    pub fn decoded_value(&self) -> Result<Vec<u8>, base64::DecodeError> {
        use base64::Engine;
        match &self.value {
            Some(v) => base64::engine::general_purpose::STANDARD.decode(v),
            None => Ok(Vec::new()),
        }
    }
}

/// One entry of `/v1/agent/members`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Addr")]
    pub addr: String,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Tags")]
    pub tags: BTreeMap<String, String>,
    /// 0 none, 1 alive, 2 leaving, 3 left, 4 failed (serf's MemberStatus).
    #[serde(rename = "Status")]
    pub status: u8,
    #[serde(rename = "ProtocolMin")]
    pub protocol_min: u8,
    #[serde(rename = "ProtocolMax")]
    pub protocol_max: u8,
    #[serde(rename = "ProtocolCur")]
    pub protocol_cur: u8,
    #[serde(rename = "DelegateMin")]
    pub delegate_min: u8,
    #[serde(rename = "DelegateMax")]
    pub delegate_max: u8,
    #[serde(rename = "DelegateCur")]
    pub delegate_cur: u8,
}

impl Member {
    pub fn status_name(&self) -> &'static str {
        match self.status {
            1 => "alive",
            2 => "leaving",
            3 => "left",
            4 => "failed",
            _ => "none",
        }
    }
}

/// One server of `/v1/operator/raft/configuration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftServer {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Leader")]
    pub leader: bool,
    #[serde(rename = "Voter")]
    pub voter: bool,
    #[serde(rename = "ProtocolVersion")]
    pub protocol_version: String,
}

/// `GET /v1/operator/raft/configuration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftConfiguration {
    #[serde(rename = "Servers")]
    pub servers: Vec<RaftServer>,
    #[serde(rename = "Index")]
    pub index: u64,
}

/// The `Config` part of `/v1/agent/self`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "NodeName")]
    pub node_name: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "Server")]
    pub server: bool,
    #[serde(rename = "Revision")]
    pub revision: String,
    #[serde(rename = "Version")]
    pub version: String,
}

/// `GET /v1/agent/self`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSelf {
    #[serde(rename = "Config")]
    pub config: AgentConfig,
    #[serde(rename = "Member")]
    pub member: Member,
    #[serde(rename = "Meta")]
    pub meta: Meta,
    /// Consul's `Stats`: section → name → value, every value a string (`Stats.raft.applied_index`).
    #[serde(rename = "Stats")]
    pub stats: BTreeMap<String, BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_registration_reads_consul_examples() {
        let body = r#"{"ID":"redis1","Name":"redis","Tags":["primary"],"Port":8000,
            "Meta":{"redis_version":"4.0"},"Check":{"HTTP":"http://localhost:5000/health","Interval":"10s"}}"#;
        let reg: AgentServiceRegistration = serde_json::from_str(body).expect("consul example decodes");
        assert_eq!(reg.name, "redis");
        assert_eq!(reg.port, 8000);
        let check = reg.check.expect("check present");
        assert_eq!(check.interval.0, std::time::Duration::from_secs(10));
    }

    #[test]
    fn kv_pair_decodes_value() {
        let pair = KvPair { value: Some("aGVsbG8=".into()), ..Default::default() };
        assert_eq!(pair.decoded_value().expect("valid base64"), b"hello");
    }
}
