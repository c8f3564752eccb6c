//! The Raft log payload: an append-only enum of catalog writes. New variants go at the end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::documents::{DocKind, DocWrite};
use super::model::{CheckSpec, CheckStatus, Locality, TaggedAddress, Weights};
use super::session::SessionSpec;
use super::txn::{TxnError, TxnOp, TxnResult};

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
    SessionCreate(SessionSpec),
    /// Invalidates a session (destroy, or a bound check or node gone): its locks are released (or
    /// its keys deleted, per `Behavior`) and lock-delay starts at `now_ms`.
    SessionDestroy {
        id: String,
        now_ms: u64,
    },
    SessionRenew {
        id: String,
    },
    /// The leader's TTL timer ran out: invalidates only if nothing renewed the session since.
    SessionExpire {
        id: String,
        renew_index: u64,
        now_ms: u64,
    },
    /// `?acquire=`: takes the key's lock for `session` (and writes the value) unless another
    /// session holds it or the key is in lock-delay at `now_ms`.
    KvLock {
        key: String,
        value: Vec<u8>,
        flags: u64,
        session: String,
        now_ms: u64,
    },
    /// `?release=`: gives the lock back (and writes the value) if `session` holds it.
    KvUnlock {
        key: String,
        value: Vec<u8>,
        flags: u64,
        session: String,
    },
    /// `/v1/txn`: all of the operations, or none.
    Txn {
        ops: Vec<TxnOp>,
        now_ms: u64,
    },
    /// Part of a snapshot archive being restored; `offset` 0 starts restore `id` afresh, any
    /// other offset must continue it where it stands.
    RestoreChunk {
        id: String,
        offset: u64,
        data: Vec<u8>,
    },
    /// Replaces the catalog with the archive that restore `id` uploaded.
    RestoreCommit {
        id: String,
    },
    /// Writes a config entry, prepared query, coordinate or the autopilot configuration.
    DocSet(DocWrite),
    /// `cas`: `Some(n)` deletes only if the document's ModifyIndex is `n`.
    DocDelete {
        kind: DocKind,
        key: String,
        cas: Option<u64>,
    },
    /// A client agent's anti-entropy: removes the node's services and checks that the agent no
    /// longer has (it registers the ones it has in the same batch).
    PruneNode {
        node: String,
        keep_services: Vec<String>,
        keep_checks: Vec<String>,
    },
}

impl Command {
    /// Sets the wall-clock time of the commands that carry one. The leader does this just before
    /// proposing, so every server applies the same time and only the leader's clock matters.
    pub fn stamp(&mut self, now: u64) {
        match self {
            Command::SessionDestroy { now_ms, .. }
            | Command::SessionExpire { now_ms, .. }
            | Command::KvLock { now_ms, .. }
            | Command::Txn { now_ms, .. } => *now_ms = now,
            Command::Batch(commands) => commands.iter_mut().for_each(|c| c.stamp(now)),
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub id: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub locality: Option<Locality>,
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
    pub socket_path: String,
    pub weights: Weights,
    pub enable_tag_override: bool,
    /// A proxy's configuration as JSON ("" for none).
    pub proxy: String,
    pub connect_native: bool,
    pub locality: Option<Locality>,
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
    /// A transaction's reads and writes, or every operation that failed (nothing was applied).
    Txn(Result<Vec<TxnResult>, Vec<TxnError>>),
}
