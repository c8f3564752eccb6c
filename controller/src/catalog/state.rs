//! The catalog tables and their indexes. Applying a command is deterministic: it reads only the
//! command and the log index, never the clock or a random source.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::documents::{DocKind, Document};
use super::model::{CheckRecord, KvRecord, NodeRecord, ServiceRecord};
use super::session::SessionRecord;

/// The tables that blocking queries can wait on as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Table {
    Nodes,
    Services,
    Checks,
    Kv,
    Sessions,
    ConfigEntries,
    PreparedQueries,
    Coordinates,
    Autopilot,
}

impl Table {
    pub const ALL: [Table; 9] = [
        Table::Nodes,
        Table::Services,
        Table::Checks,
        Table::Kv,
        Table::Sessions,
        Table::ConfigEntries,
        Table::PreparedQueries,
        Table::Coordinates,
        Table::Autopilot,
    ];

    pub fn slot(self) -> usize {
        self as usize
    }
}

/// What one applied command changed, for waking blocked readers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub tables: BTreeSet<Table>,
    pub services: BTreeSet<String>,
    pub kv_keys: BTreeSet<String>,
    /// The whole catalog was replaced (snapshot restore): every reader re-reads.
    pub reset: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && !self.reset
    }

    pub fn merge(&mut self, other: Changes) {
        self.tables.extend(other.tables);
        self.services.extend(other.services);
        self.kv_keys.extend(other.kv_keys);
        self.reset |= other.reset;
    }
}

/// The whole catalog: what a snapshot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    pub(crate) nodes: BTreeMap<String, NodeRecord>,
    /// Keyed by (node, service ID).
    pub(crate) services: BTreeMap<(String, String), ServiceRecord>,
    /// Keyed by (node, check ID).
    pub(crate) checks: BTreeMap<(String, String), CheckRecord>,
    pub(crate) kv: BTreeMap<String, KvRecord>,
    /// Index of the delete of each removed key, so a prefix's index never goes backwards.
    pub(crate) kv_tombstones: BTreeMap<String, u64>,
    /// (service name) -> (node, service ID) of its instances.
    pub(crate) by_service_name: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Last index at which anything about a service name changed (instances, their checks, their nodes).
    pub(crate) service_index: BTreeMap<String, u64>,
    pub(crate) table_index: [u64; Table::ALL.len()],
    pub(crate) sessions: BTreeMap<String, SessionRecord>,
    /// Config entries, prepared queries, coordinates, the autopilot configuration.
    pub(crate) documents: BTreeMap<(DocKind, String), Document>,
    /// Keys released by an invalidated session, and until when (leader wall clock, ms since the
    /// epoch) they cannot be acquired again.
    pub(crate) lock_delays: BTreeMap<String, u64>,
    /// The last log index applied (any entry, including Raft's own).
    pub(crate) last_index: u64,
    /// Added to a log index to give the index clients see (`ModifyIndex`, `X-Consul-Index`). It
    /// is 0 until a snapshot restore brings in records with indexes above this cluster's log;
    /// from then on every new index is above every restored one.
    pub(crate) index_base: u64,
    /// A snapshot restore being uploaded in chunks, applied as a whole by `RestoreCommit`.
    pub(crate) restore: Option<RestoreStaging>,
}

/// The chunks of a snapshot archive received so far, for one restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreStaging {
    pub id: String,
    pub archive: Vec<u8>,
}

impl CatalogState {
    /// The last log index applied.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The newest index a client can have seen: the last log index as clients number it.
    pub fn client_index(&self) -> u64 {
        self.last_index + self.index_base
    }

    pub fn table_index(&self, table: Table) -> u64 {
        self.table_index[table.slot()]
    }

    /// Index a reader of several tables reports: the newest of them, never 0.
    pub fn tables_index(&self, tables: &[Table]) -> u64 {
        tables.iter().map(|t| self.table_index(*t)).max().unwrap_or(0).max(1)
    }

    /// Index of everything about one service name; the services table's when the name is unknown.
    pub fn service_name_index(&self, name: &str) -> u64 {
        self.service_index
            .get(name)
            .copied()
            .unwrap_or_else(|| self.tables_index(&[Table::Services, Table::Checks]))
            .max(1)
    }

    /// Index of a KV prefix: the newest write or delete under it, never 0.
    pub fn kv_prefix_index(&self, prefix: &str) -> u64 {
        let live = self.kv.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix));
        let live_max = live.map(|(_, r)| r.modify_index).max().unwrap_or(0);
        let dead = self.kv_tombstones.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix));
        let dead_max = dead.map(|(_, i)| *i).max().unwrap_or(0);
        live_max.max(dead_max).max(1)
    }

    pub(crate) fn bump(&mut self, changes: &mut Changes, table: Table, index: u64) {
        self.table_index[table.slot()] = index;
        changes.tables.insert(table);
    }

    /// A KV key was written or removed at `index`.
    pub(crate) fn bump_key(&mut self, changes: &mut Changes, key: &str, index: u64) {
        self.bump(changes, Table::Kv, index);
        changes.kv_keys.insert(key.to_string());
    }

    pub(crate) fn bump_service(&mut self, changes: &mut Changes, name: &str, index: u64) {
        self.service_index.insert(name.to_string(), index);
        changes.services.insert(name.to_string());
    }

    /// Service names with an instance on `node`.
    pub(crate) fn service_names_on(&self, node: &str) -> BTreeSet<String> {
        self.services_on(node).map(|s| s.name.clone()).collect()
    }

    pub(crate) fn services_on(&self, node: &str) -> impl Iterator<Item = &ServiceRecord> + '_ {
        let node = node.to_string();
        self.services
            .range((node.clone(), String::new())..)
            .take_while(move |((n, _), _)| *n == node)
            .map(|(_, s)| s)
    }

    pub(crate) fn checks_on(&self, node: &str) -> impl Iterator<Item = &CheckRecord> + '_ {
        let node = node.to_string();
        self.checks
            .range((node.clone(), String::new())..)
            .take_while(move |((n, _), _)| *n == node)
            .map(|(_, c)| c)
    }

    /// Serialized form for Raft snapshots.
    pub fn to_bytes(&self) -> Result<Vec<u8>, bincode::Error> {
        bincode::serialize(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<CatalogState, bincode::Error> {
        bincode::deserialize(bytes)
    }
}
