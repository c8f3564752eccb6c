//! Consul's JSON wire types, field for field (PascalCase, maps where Consul uses maps).
//!
//! Every struct reads with defaults for absent fields, so partial bodies from any Consul client decode.

mod check;
mod service;

use std::collections::BTreeMap;

pub use check::{CatalogCheck, CheckDefinition, HealthCheck, HealthCheckDefinition};
use serde::{Deserialize, Serialize, Serializer};
pub use service::{
    AgentService, AgentServiceConnect, AgentServiceRegistration, CatalogService, HealthService, Locality,
    ProxyConfig, ServiceAddress, Weights,
};

use crate::duration::GoDuration;

pub type Meta = BTreeMap<String, String>;

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Writes a duration as an integer of nanoseconds (the one way Consul writes a check's `TTL`).
fn as_nanos<S: Serializer>(d: &GoDuration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(d.0.as_nanos()).unwrap_or(u64::MAX))
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
    #[serde(rename = "Locality", skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
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
    #[serde(rename = "Locality", skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
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
