//! Transactions (`/v1/txn`): up to 128 operations applied at one log index, all or nothing.
//!
//! Operations run in order against the live tables; each write first records what it is about
//! to change. If any operation fails, every change is undone from that record, in reverse, and
//! the result lists each failure with its position; readers are not woken.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::command::{Command, CommandResult, Registration};
use super::model::{CheckRecord, KvRecord, NodeRecord, ServiceRecord};
use super::state::{CatalogState, Changes};

pub const MAX_TXN_OPS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvVerb {
    Set,
    Cas,
    Lock,
    Unlock,
    Get,
    GetOrEmpty,
    GetTree,
    CheckIndex,
    CheckSession,
    CheckNotExists,
    Delete,
    DeleteTree,
    DeleteCas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogVerb {
    Get,
    Delete,
    DeleteCas,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Node, service or check `set` (and `cas`: only if the entry's ModifyIndex is `index`, or,
    /// with 0, only if it does not exist).
    Register {
        target: RegisterTarget,
        cas: bool,
        index: u64,
        registration: Box<Registration>,
    },
    Kv {
        verb: KvVerb,
        key: String,
        value: Vec<u8>,
        flags: u64,
        index: u64,
        session: String,
    },
    Node {
        verb: CatalogVerb,
        node: String,
        index: u64,
    },
    Service {
        verb: CatalogVerb,
        node: String,
        service_id: String,
        index: u64,
    },
    Check {
        verb: CatalogVerb,
        node: String,
        check_id: String,
        index: u64,
    },
}

/// What a registering txn op writes: the node, or one service or check on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterTarget {
    Node,
    Service(String),
    Check(String),
}

/// What one operation answers: the row it wrote or read (writes answer without the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnResult {
    Kv(KvRecord),
    Node(NodeRecord),
    Service(ServiceRecord),
    Check(CheckRecord),
}

impl TxnResult {
    pub fn modify_index(&self) -> u64 {
        match self {
            TxnResult::Kv(k) => k.modify_index,
            TxnResult::Node(n) => n.modify_index,
            TxnResult::Service(s) => s.modify_index,
            TxnResult::Check(c) => c.modify_index,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}

/// Rows as they were before the transaction touched them.
#[derive(Default)]
struct Undo {
    kv: Vec<(String, Option<KvRecord>, Option<u64>)>,
    nodes: Vec<NodeRows>,
}

/// A service name's instances and index, as they were.
type NameRows = (String, Option<BTreeSet<(String, String)>>, Option<u64>);

struct NodeRows {
    node: String,
    record: Option<NodeRecord>,
    services: Vec<ServiceRecord>,
    checks: Vec<CheckRecord>,
    names: Vec<NameRows>,
}

/// What a node/service/check verb answers and writes, or why it fails.
fn plan(
    verb: CatalogVerb,
    want: u64,
    found: TxnResult,
    delete: Command,
) -> Result<(Option<TxnResult>, Option<Command>), String> {
    let current = found.modify_index();
    match verb {
        CatalogVerb::Get => Ok((Some(found), None)),
        CatalogVerb::Delete => Ok((None, Some(delete))),
        CatalogVerb::DeleteCas if current == want => Ok((None, Some(delete))),
        CatalogVerb::DeleteCas => Err(format!("failed to delete, index is stale ({current} != {want})")),
    }
}

impl CatalogState {
    pub(crate) fn txn(
        &mut self,
        index: u64,
        ops: &[TxnOp],
        now_ms: u64,
        changes: &mut Changes,
    ) -> CommandResult {
        let saved_tables = self.table_index;
        let saved_last = self.last_index;
        let mut undo = Undo::default();
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let mut txn_changes = Changes::default();
        for (op_index, op) in ops.iter().enumerate() {
            match self.txn_op(index, op, now_ms, &mut undo, &mut txn_changes) {
                Ok(found) => results.extend(found),
                Err(what) => errors.push(TxnError { op_index, what }),
            }
        }
        if errors.is_empty() {
            changes.merge(txn_changes);
            return CommandResult::Txn(Ok(results));
        }
        self.undo(undo);
        self.table_index = saved_tables;
        self.last_index = saved_last;
        CommandResult::Txn(Err(errors))
    }

    fn save_key(&self, undo: &mut Undo, key: &str) {
        undo.kv.push((key.to_string(), self.kv.get(key).cloned(), self.kv_tombstones.get(key).copied()));
    }

    fn save_node(&self, undo: &mut Undo, node: &str) {
        let names: Vec<NameRows> = self
            .service_names_on(node)
            .into_iter()
            .map(|n| (n.clone(), self.by_service_name.get(&n).cloned(), self.service_index.get(&n).copied()))
            .collect();
        undo.nodes.push(NodeRows {
            node: node.to_string(),
            record: self.nodes.get(node).cloned(),
            services: self.services_on(node).cloned().collect(),
            checks: self.checks_on(node).cloned().collect(),
            names,
        });
    }

    fn undo(&mut self, undo: Undo) {
        for (key, record, tombstone) in undo.kv.into_iter().rev() {
            match record {
                Some(r) => self.kv.insert(key.clone(), r),
                None => self.kv.remove(&key),
            };
            match tombstone {
                Some(t) => self.kv_tombstones.insert(key, t),
                None => self.kv_tombstones.remove(&key),
            };
        }
        for rows in undo.nodes.into_iter().rev() {
            let node = rows.node;
            let services: Vec<(String, String)> =
                self.services_on(&node).map(|s| (node.clone(), s.id.clone())).collect();
            let checks: Vec<(String, String)> =
                self.checks_on(&node).map(|c| (node.clone(), c.id.clone())).collect();
            services.iter().for_each(|k| drop(self.services.remove(k)));
            checks.iter().for_each(|k| drop(self.checks.remove(k)));
            for s in rows.services {
                self.services.insert((node.clone(), s.id.clone()), s);
            }
            for c in rows.checks {
                self.checks.insert((node.clone(), c.id.clone()), c);
            }
            match rows.record {
                Some(r) => self.nodes.insert(node.clone(), r),
                None => self.nodes.remove(&node),
            };
            for (name, members, last) in rows.names {
                match members {
                    Some(m) => self.by_service_name.insert(name.clone(), m),
                    None => self.by_service_name.remove(&name),
                };
                match last {
                    Some(i) => self.service_index.insert(name, i),
                    None => self.service_index.remove(&name),
                };
            }
        }
    }

    fn txn_op(
        &mut self,
        index: u64,
        op: &TxnOp,
        now_ms: u64,
        undo: &mut Undo,
        changes: &mut Changes,
    ) -> Result<Vec<TxnResult>, String> {
        match op {
            TxnOp::Register { target, cas, index: want, registration } => {
                self.txn_register(index, target, *cas, *want, registration, undo, changes)
            }
            TxnOp::Kv { verb, key, value, flags, index: want, session } => {
                self.txn_kv(index, *verb, key, value, *flags, *want, session, now_ms, undo, changes)
            }
            TxnOp::Node { verb, node, index: want } => {
                let found =
                    self.nodes.get(node).cloned().ok_or_else(|| format!("node {node:?} doesn't exist"))?;
                let delete = Command::DeregisterNode { node: node.clone() };
                let plan = plan(*verb, *want, TxnResult::Node(found), delete)?;
                Ok(self.txn_catalog_write(index, node, plan, undo, changes))
            }
            TxnOp::Service { verb, node, service_id, index: want } => {
                let found = self
                    .service(node, service_id)
                    .cloned()
                    .ok_or_else(|| format!("service {service_id:?} on node {node:?} doesn't exist"))?;
                let delete =
                    Command::DeregisterService { node: node.clone(), service_id: service_id.clone() };
                let plan = plan(*verb, *want, TxnResult::Service(found), delete)?;
                Ok(self.txn_catalog_write(index, node, plan, undo, changes))
            }
            TxnOp::Check { verb, node, check_id, index: want } => {
                let found = self
                    .check(node, check_id)
                    .cloned()
                    .ok_or_else(|| format!("check {check_id:?} on node {node:?} doesn't exist"))?;
                let delete = Command::DeregisterCheck { node: node.clone(), check_id: check_id.clone() };
                let plan = plan(*verb, *want, TxnResult::Check(found), delete)?;
                Ok(self.txn_catalog_write(index, node, plan, undo, changes))
            }
        }
    }

    /// The current row of a registering op's target, as the op answers it.
    fn register_target(&self, node: &str, target: &RegisterTarget) -> Option<TxnResult> {
        match target {
            RegisterTarget::Node => self.nodes.get(node).cloned().map(TxnResult::Node),
            RegisterTarget::Service(id) => self.service(node, id).cloned().map(TxnResult::Service),
            RegisterTarget::Check(id) => self.check(node, id).cloned().map(TxnResult::Check),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn txn_register(
        &mut self,
        index: u64,
        target: &RegisterTarget,
        cas: bool,
        want: u64,
        registration: &Registration,
        undo: &mut Undo,
        changes: &mut Changes,
    ) -> Result<Vec<TxnResult>, String> {
        let node = registration.node.name.clone();
        if cas {
            let current = self.register_target(&node, target).map_or(0, |r| r.modify_index());
            if current != want {
                return Err(format!("failed to set {target:?} on node {node:?}, index is stale"));
            }
        }
        self.save_node(undo, &node);
        if let CommandResult::Rejected(why) =
            self.apply_at(index, &Command::Register(registration.clone()), changes)
        {
            return Err(why);
        }
        Ok(self.register_target(&node, target).into_iter().collect())
    }

    fn txn_catalog_write(
        &mut self,
        index: u64,
        node: &str,
        (result, write): (Option<TxnResult>, Option<Command>),
        undo: &mut Undo,
        changes: &mut Changes,
    ) -> Vec<TxnResult> {
        if let Some(write) = write {
            self.save_node(undo, node);
            self.apply_at(index, &write, changes);
        }
        result.into_iter().collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn txn_kv(
        &mut self,
        index: u64,
        verb: KvVerb,
        key: &str,
        value: &[u8],
        flags: u64,
        want: u64,
        session: &str,
        now_ms: u64,
        undo: &mut Undo,
        changes: &mut Changes,
    ) -> Result<Vec<TxnResult>, String> {
        let current = self.kv.get(key).cloned();
        let written = |state: &CatalogState| {
            state
                .kv
                .get(key)
                .map(|r| TxnResult::Kv(KvRecord { value: Vec::new(), ..r.clone() }))
                .into_iter()
                .collect()
        };
        match verb {
            KvVerb::Get => {
                current.map(|r| vec![TxnResult::Kv(r)]).ok_or_else(|| format!("key {key:?} doesn't exist"))
            }
            KvVerb::GetOrEmpty => Ok(current.map(TxnResult::Kv).into_iter().collect()),
            KvVerb::GetTree => Ok(self.kv_list(key).into_iter().map(|r| TxnResult::Kv(r.clone())).collect()),
            KvVerb::CheckIndex => match current {
                Some(r) if r.modify_index == want => {
                    Ok(vec![TxnResult::Kv(KvRecord { value: Vec::new(), ..r })])
                }
                Some(r) => Err(format!("current modify index {} != {want}", r.modify_index)),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            KvVerb::CheckSession => match current {
                Some(r) if r.session.as_deref() == Some(session) => {
                    Ok(vec![TxnResult::Kv(KvRecord { value: Vec::new(), ..r })])
                }
                Some(r) => Err(format!("current session {:?} != {session:?}", r.session.unwrap_or_default())),
                None => Err(format!("key {key:?} doesn't exist")),
            },
            KvVerb::CheckNotExists => match current {
                Some(_) => Err(format!("key {key:?} exists")),
                None => Ok(Vec::new()),
            },
            KvVerb::Set | KvVerb::Cas => {
                let cas = (verb == KvVerb::Cas).then_some(want);
                self.save_key(undo, key);
                let cmd = Command::KvSet { key: key.to_string(), value: value.to_vec(), flags, cas };
                match self.apply_at(index, &cmd, changes) {
                    CommandResult::Bool(true) => Ok(written(self)),
                    _ => Err(format!("failed to set key {key:?}, index is stale")),
                }
            }
            KvVerb::Lock | KvVerb::Unlock => {
                self.save_key(undo, key);
                let (key, value, session) = (key.to_string(), value.to_vec(), session.to_string());
                let cmd = if verb == KvVerb::Lock {
                    Command::KvLock { key: key.clone(), value, flags, session, now_ms }
                } else {
                    Command::KvUnlock { key: key.clone(), value, flags, session }
                };
                match self.apply_at(index, &cmd, changes) {
                    CommandResult::Bool(true) => Ok(written(self)),
                    CommandResult::Rejected(reason) => Err(format!("failed to lock key {key:?}: {reason}")),
                    _ if verb == KvVerb::Lock => {
                        Err(format!("failed to lock key {key:?}, lock is already held"))
                    }
                    _ => Err(format!(
                        "failed to unlock key {key:?}, lock isn't held, or is held by another session"
                    )),
                }
            }
            KvVerb::Delete => {
                self.save_key(undo, key);
                self.kv_remove(index, key, changes);
                Ok(Vec::new())
            }
            KvVerb::DeleteCas => match current {
                Some(r) if r.modify_index == want => {
                    self.save_key(undo, key);
                    self.kv_remove(index, key, changes);
                    Ok(Vec::new())
                }
                _ => Err(format!("failed to delete key {key:?}, index is stale")),
            },
            KvVerb::DeleteTree => {
                let keys: Vec<String> = self.kv_list(key).into_iter().map(|r| r.key.clone()).collect();
                for k in keys {
                    self.save_key(undo, &k);
                    self.kv_remove(index, &k, changes);
                }
                Ok(Vec::new())
            }
        }
    }
}
