//! The Raft log payload: an append-only enum of catalog writes. New variants go at the end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{CheckSpec, CheckStatus, TaggedAddress, Weights};

// Registrations dominate the log; boxing them would add an allocation per entry for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Upsert a node, optionally one of its services and checks (catalog and agent registration).
    Register(Registration),
    /// Remove a node with all its services and checks.
    DeregisterNode {
        node: String,
    },
    /// Remove one service instance and its checks.
    DeregisterService {
        node: String,
        service_id: String,
    },
    DeregisterCheck {
        node: String,
        check_id: String,
    },
    /// A new status or output of a check; a no-op when both are unchanged.
    UpdateCheck {
        node: String,
        check_id: String,
        status: CheckStatus,
        output: String,
    },
    /// `cas`: `Some(0)` creates only; `Some(n)` writes only if the key's ModifyIndex is `n`.
    KvSet {
        key: String,
        value: Vec<u8>,
        flags: u64,
        cas: Option<u64>,
    },
    /// `cas`: `Some(n)` deletes only if the key's ModifyIndex is `n` (0 never matches).
    KvDelete {
        key: String,
        cas: Option<u64>,
    },
    KvDeleteTree {
        prefix: String,
    },
    /// Independent writes of concurrent clients, applied in order at one log index (the leader
    /// batches them into one entry). Each keeps its own result; one refused does not stop the rest.
    Batch(Vec<Command>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub id: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, TaggedAddress>,
    pub meta: BTreeMap<String, String>,
    pub port: u16,
    pub weights: Weights,
    pub enable_tag_override: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRegistration {
    pub id: String,
    pub name: String,
    /// `None` keeps the status of an existing check with this ID, else starts critical.
    pub status: Option<CheckStatus>,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub spec: CheckSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub node: NodeSpec,
    /// Leave an existing node's fields as they are.
    pub skip_node_update: bool,
    pub service: Option<ServiceSpec>,
    pub checks: Vec<CheckRegistration>,
    /// Remove the service's checks that are not in `checks` (agent `replace-existing-checks`).
    pub replace_service_checks: bool,
}

/// What applying a command answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    Done,
    /// KV writes answer `true`/`false` (a failed CAS is `false`).
    Bool(bool),
    /// Refused as a whole; nothing was written.
    Rejected(String),
    /// The results of a `Command::Batch`, in order.
    Batch(Vec<CommandResult>),
}
