//! Health checks on the wire: definitions as clients send them, checks as Consul shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{is_false, is_zero_u64};
use crate::duration::GoDuration;

/// A check definition as accepted by `/v1/agent/check/register` and inside a service registration:
/// every field of Consul's `AgentServiceCheck` and `AgentCheckRegistration`.
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
    #[serde(rename = "DisableRedirects", skip_serializing_if = "is_false")]
    pub disable_redirects: bool,
    #[serde(rename = "TLSSkipVerify", skip_serializing_if = "is_false")]
    pub tls_skip_verify: bool,
    #[serde(rename = "TLSServerName", skip_serializing_if = "String::is_empty")]
    pub tls_server_name: String,
    #[serde(rename = "TCP", skip_serializing_if = "String::is_empty")]
    pub tcp: String,
    #[serde(rename = "TCPUseTLS", skip_serializing_if = "is_false")]
    pub tcp_use_tls: bool,
    #[serde(rename = "UDP", skip_serializing_if = "String::is_empty")]
    pub udp: String,
    #[serde(rename = "GRPC", skip_serializing_if = "String::is_empty")]
    pub grpc: String,
    #[serde(rename = "GRPCUseTLS", skip_serializing_if = "is_false")]
    pub grpc_use_tls: bool,
    #[serde(rename = "H2PING", skip_serializing_if = "String::is_empty")]
    pub h2ping: String,
    #[serde(rename = "H2PingUseTLS", skip_serializing_if = "is_false")]
    pub h2ping_use_tls: bool,
    #[serde(rename = "OSService", skip_serializing_if = "String::is_empty")]
    pub os_service: String,
    #[serde(rename = "AliasNode", skip_serializing_if = "String::is_empty")]
    pub alias_node: String,
    #[serde(rename = "AliasService", skip_serializing_if = "String::is_empty")]
    pub alias_service: String,
    #[serde(rename = "DockerContainerID", skip_serializing_if = "String::is_empty")]
    pub docker_container_id: String,
    #[serde(rename = "Shell", skip_serializing_if = "String::is_empty")]
    pub shell: String,
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

/// The `Definition` of a check as Consul shows it (its `HealthCheckDefinition`): what the check
/// runs, every field left out when empty. Also read from catalog registrations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckDefinition {
    #[serde(rename = "Interval", skip_serializing_if = "GoDuration::is_zero")]
    pub interval: GoDuration,
    #[serde(rename = "OutputMaxSize", skip_serializing_if = "is_zero_u64")]
    pub output_max_size: u64,
    #[serde(rename = "Timeout", skip_serializing_if = "GoDuration::is_zero")]
    pub timeout: GoDuration,
    #[serde(rename = "DeregisterCriticalServiceAfter", skip_serializing_if = "GoDuration::is_zero")]
    pub deregister_critical_service_after: GoDuration,
    #[serde(rename = "HTTP", skip_serializing_if = "String::is_empty")]
    pub http: String,
    #[serde(rename = "TLSServerName", skip_serializing_if = "String::is_empty")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify", skip_serializing_if = "is_false")]
    pub tls_skip_verify: bool,
    #[serde(rename = "Header", skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(rename = "Method", skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(rename = "Body", skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(rename = "DisableRedirects", skip_serializing_if = "is_false")]
    pub disable_redirects: bool,
    #[serde(rename = "TCP", skip_serializing_if = "String::is_empty")]
    pub tcp: String,
    #[serde(rename = "TCPUseTLS", skip_serializing_if = "is_false")]
    pub tcp_use_tls: bool,
    #[serde(rename = "UDP", skip_serializing_if = "String::is_empty")]
    pub udp: String,
    #[serde(rename = "H2PING", skip_serializing_if = "String::is_empty")]
    pub h2ping: String,
    #[serde(rename = "OSService", skip_serializing_if = "String::is_empty")]
    pub os_service: String,
    #[serde(rename = "H2PingUseTLS", skip_serializing_if = "is_false")]
    pub h2ping_use_tls: bool,
    #[serde(rename = "ScriptArgs", skip_serializing_if = "Vec::is_empty")]
    pub script_args: Vec<String>,
    #[serde(rename = "DockerContainerID", skip_serializing_if = "String::is_empty")]
    pub docker_container_id: String,
    #[serde(rename = "Shell", skip_serializing_if = "String::is_empty")]
    pub shell: String,
    #[serde(rename = "GRPC", skip_serializing_if = "String::is_empty")]
    pub grpc: String,
    #[serde(rename = "GRPCUseTLS", skip_serializing_if = "is_false")]
    pub grpc_use_tls: bool,
    #[serde(rename = "AliasNode", skip_serializing_if = "String::is_empty")]
    pub alias_node: String,
    #[serde(rename = "AliasService", skip_serializing_if = "String::is_empty")]
    pub alias_service: String,
    /// Written in nanoseconds, as Consul writes this one field; read as either form.
    #[serde(rename = "TTL", skip_serializing_if = "GoDuration::is_zero", serialize_with = "super::as_nanos")]
    pub ttl: GoDuration,
}

/// A health check as the health, catalog and agent endpoints show it.
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
    #[serde(rename = "Interval")]
    pub interval: String,
    #[serde(rename = "Timeout")]
    pub timeout: String,
    #[serde(rename = "ExposedPort")]
    pub exposed_port: u16,
    #[serde(rename = "Definition")]
    pub definition: HealthCheckDefinition,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
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
    #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
    pub check_type: String,
    #[serde(rename = "Definition", skip_serializing_if = "Option::is_none")]
    pub definition: Option<HealthCheckDefinition>,
}
