//! The Raft type configuration of census.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::catalog::{Command, CommandResult};

/// A server as Raft membership records it: its name and the addresses of its Raft and HTTP ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerNode {
    pub name: String,
    pub raft_addr: String,
    pub http_addr: String,
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = ServerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, ServerNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, ServerNode>;
