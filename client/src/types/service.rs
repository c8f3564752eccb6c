//! Services on the wire: registrations, and services as the agent, catalog and health endpoints
//! show them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::check::CheckDefinition;
use super::{Meta, is_false, is_zero_u64};

fn is_zero_u16(v: &u16) -> bool {
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

/// Where a node or service runs (Consul 1.17's `Locality`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Locality {
    #[serde(rename = "Region", skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(rename = "Zone", skip_serializing_if = "String::is_empty")]
    pub zone: String,
}

/// A proxy's configuration (`Proxy` of a `connect-proxy` or gateway, `ServiceProxy` of a catalog
/// row): the fields Consul knows by name, nested parts kept as sent. `Mode`, `MeshGateway` and
/// `Expose` are always written, as Consul writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyConfig {
    #[serde(rename = "EnvoyExtensions", skip_serializing_if = "Vec::is_empty")]
    pub envoy_extensions: Vec<serde_json::Value>,
    #[serde(rename = "DestinationServiceName", skip_serializing_if = "String::is_empty")]
    pub destination_service_name: String,
    #[serde(rename = "DestinationServiceID", skip_serializing_if = "String::is_empty")]
    pub destination_service_id: String,
    #[serde(rename = "LocalServiceAddress", skip_serializing_if = "String::is_empty")]
    pub local_service_address: String,
    #[serde(rename = "LocalServicePort", skip_serializing_if = "is_zero_u16")]
    pub local_service_port: u16,
    #[serde(rename = "LocalServiceSocketPath", skip_serializing_if = "String::is_empty")]
    pub local_service_socket_path: String,
    #[serde(rename = "Mode")]
    pub mode: String,
    #[serde(rename = "TransparentProxy", skip_serializing_if = "Option::is_none")]
    pub transparent_proxy: Option<serde_json::Value>,
    #[serde(rename = "Config", skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    #[serde(rename = "Upstreams", skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<serde_json::Value>,
    #[serde(rename = "MeshGateway")]
    pub mesh_gateway: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "Expose")]
    pub expose: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "AccessLogs", skip_serializing_if = "Option::is_none")]
    pub access_logs: Option<serde_json::Value>,
}

/// `Connect` of a service: a Connect-native service, or a sidecar proxy to register beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentServiceConnect {
    #[serde(rename = "Native", skip_serializing_if = "is_false")]
    pub native: bool,
    #[serde(rename = "SidecarService", skip_serializing_if = "Option::is_none")]
    pub sidecar_service: Option<Box<AgentServiceRegistration>>,
}

/// Body of `PUT /v1/agent/service/register`, and the `service` of a definition file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentServiceRegistration {
    #[serde(rename = "Kind", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(rename = "ID", skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `Service` is the key in a catalog registration (Consul's NodeService); `Name` in the agent's.
    #[serde(rename = "Name", alias = "Service")]
    pub name: String,
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Address", skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(rename = "SocketPath", skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
    #[serde(rename = "TaggedAddresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "EnableTagOverride", skip_serializing_if = "is_false")]
    pub enable_tag_override: bool,
    #[serde(rename = "Meta", skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: Meta,
    #[serde(rename = "Weights", skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(rename = "Check", skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDefinition>,
    #[serde(rename = "Checks", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDefinition>,
    /// A proxy's configuration (`connect-proxy` and gateway kinds).
    #[serde(rename = "Proxy", skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    #[serde(rename = "Connect", skip_serializing_if = "Option::is_none")]
    pub connect: Option<AgentServiceConnect>,
    #[serde(rename = "Locality", skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
}

/// A service as `/v1/agent/services`, `/v1/agent/service/:id` and `/v1/catalog/node/:node` show
/// it (its name is under `Service`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentService {
    #[serde(rename = "Kind", skip_serializing_if = "String::is_empty")]
    pub kind: String,
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
    #[serde(rename = "SocketPath", skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
    #[serde(rename = "TaggedAddresses", skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(rename = "Weights")]
    pub weights: Weights,
    #[serde(rename = "EnableTagOverride")]
    pub enable_tag_override: bool,
    #[serde(rename = "CreateIndex", skip_serializing_if = "is_zero_u64")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex", skip_serializing_if = "is_zero_u64")]
    pub modify_index: u64,
    #[serde(rename = "ContentHash", skip_serializing_if = "String::is_empty")]
    pub content_hash: String,
    #[serde(rename = "Proxy", skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    #[serde(rename = "Connect", skip_serializing_if = "Option::is_none")]
    pub connect: Option<AgentServiceConnect>,
    #[serde(rename = "Datacenter", skip_serializing_if = "String::is_empty")]
    pub datacenter: String,
    #[serde(rename = "Locality", skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
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
    #[serde(rename = "ServiceSocketPath")]
    pub service_socket_path: String,
    #[serde(rename = "ServiceEnableTagOverride")]
    pub service_enable_tag_override: bool,
    #[serde(rename = "ServiceProxy")]
    pub service_proxy: ProxyConfig,
    #[serde(rename = "ServiceConnect")]
    pub service_connect: AgentServiceConnect,
    #[serde(rename = "ServiceLocality")]
    pub service_locality: Option<Locality>,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// The `Service` part of a `/v1/health/service/:name` entry (Consul's NodeService).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthService {
    #[serde(rename = "Kind", skip_serializing_if = "String::is_empty")]
    pub kind: String,
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
    #[serde(rename = "SocketPath", skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
    #[serde(rename = "Weights")]
    pub weights: Weights,
    #[serde(rename = "EnableTagOverride")]
    pub enable_tag_override: bool,
    #[serde(rename = "Locality", skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
    #[serde(rename = "Proxy")]
    pub proxy: ProxyConfig,
    #[serde(rename = "Connect")]
    pub connect: AgentServiceConnect,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}
