//! Sessions and the KV locks they hold.
//!
//! Invalidation (destroy, TTL expiry, a bound check critical or gone, the node gone) releases or
//! deletes the session's keys and puts them in lock-delay. Which sessions are due is decided by
//! the leader outside apply; apply only checks, deterministically, what the command says.

use serde::{Deserialize, Serialize};

use super::command::CommandResult;
use super::model::CheckStatus;
use super::state::{CatalogState, Changes, Table};

/// What happens to a session's locked keys when it is invalidated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionBehavior {
    #[default]
    Release,
    Delete,
}

impl SessionBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionBehavior::Release => "release",
            SessionBehavior::Delete => "delete",
        }
    }
}

/// A session as created; the ID is chosen by the server that took the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpec {
    pub id: String,
    pub name: String,
    pub node: String,
    pub lock_delay_ms: u64,
    pub behavior: SessionBehavior,
    /// 0: no TTL.
    pub ttl_ms: u64,
    pub node_checks: Vec<String>,
    pub service_checks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub spec: SessionSpec,
    pub create_index: u64,
    pub modify_index: u64,
    /// Log index of the creation or the last renewal: the leader restarts the TTL when it moves.
    pub renew_index: u64,
}

impl CatalogState {
    pub fn sessions(&self) -> impl Iterator<Item = &SessionRecord> + '_ {
        self.sessions.values()
    }

    pub fn session(&self, id: &str) -> Option<&SessionRecord> {
        self.sessions.get(id)
    }

    /// Why a session cannot be valid now, if it cannot: its node or a bound check is gone or critical.
    pub fn session_problem(&self, spec: &SessionSpec) -> Option<String> {
        if !self.nodes.contains_key(&spec.node) {
            return Some(format!("Missing node registration for node {:?}", spec.node));
        }
        for id in spec.node_checks.iter().chain(&spec.service_checks) {
            match self.checks.get(&(spec.node.clone(), id.clone())) {
                None => return Some(format!("Missing check '{id}' registration")),
                Some(c) if c.status == CheckStatus::Critical => {
                    return Some(format!("Check '{id}' is in critical state"));
                }
                Some(_) => {}
            }
        }
        None
    }

    pub(crate) fn session_create(
        &mut self,
        index: u64,
        spec: &SessionSpec,
        changes: &mut Changes,
    ) -> CommandResult {
        if spec.id.is_empty() || self.sessions.contains_key(&spec.id) {
            return CommandResult::Rejected(format!("Session ID {:?} is not available", spec.id));
        }
        if let Some(problem) = self.session_problem(spec) {
            return CommandResult::Rejected(problem);
        }
        let record = SessionRecord {
            spec: spec.clone(),
            create_index: index,
            modify_index: index,
            renew_index: index,
        };
        self.sessions.insert(spec.id.clone(), record);
        self.bump(changes, Table::Sessions, index);
        CommandResult::Done
    }

    pub(crate) fn session_renew(&mut self, index: u64, id: &str, changes: &mut Changes) -> CommandResult {
        let Some(session) = self.sessions.get_mut(id) else {
            return CommandResult::Rejected(format!("Session id '{id}' not found"));
        };
        session.renew_index = index;
        self.bump(changes, Table::Sessions, index);
        CommandResult::Done
    }

    /// Removes the session, then releases or deletes its keys; they stay in lock-delay until
    /// `now_ms + LockDelay`.
    pub(crate) fn session_invalidate(
        &mut self,
        index: u64,
        id: &str,
        now_ms: u64,
        changes: &mut Changes,
    ) -> CommandResult {
        let Some(session) = self.sessions.remove(id) else { return CommandResult::Bool(true) };
        self.bump(changes, Table::Sessions, index);
        self.lock_delays.retain(|_, until| *until > now_ms);
        let held: Vec<String> =
            self.kv.values().filter(|r| r.session.as_deref() == Some(id)).map(|r| r.key.clone()).collect();
        for key in held {
            match session.spec.behavior {
                SessionBehavior::Delete => self.kv_remove(index, &key, changes),
                SessionBehavior::Release => {
                    if let Some(record) = self.kv.get_mut(&key) {
                        record.session = None;
                        record.modify_index = index;
                    }
                    self.bump_key(changes, &key, index);
                }
            }
            if session.spec.lock_delay_ms > 0 {
                self.lock_delays.insert(key, now_ms + session.spec.lock_delay_ms);
            }
        }
        CommandResult::Bool(true)
    }

    pub(crate) fn session_expire(
        &mut self,
        index: u64,
        id: &str,
        renew_index: u64,
        now_ms: u64,
        changes: &mut Changes,
    ) -> CommandResult {
        match self.sessions.get(id) {
            Some(s) if s.renew_index == renew_index => self.session_invalidate(index, id, now_ms, changes),
            _ => CommandResult::Bool(false),
        }
    }

    /// Until when (ms since the epoch) `key` cannot be acquired, if it is in lock-delay at `now_ms`.
    pub fn lock_delay(&self, key: &str, now_ms: u64) -> Option<u64> {
        self.lock_delays.get(key).copied().filter(|until| *until > now_ms)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn kv_lock(
        &mut self,
        index: u64,
        key: &str,
        value: &[u8],
        flags: u64,
        session: &str,
        now_ms: u64,
        changes: &mut Changes,
    ) -> CommandResult {
        let Some(record) = self.sessions.get(session) else {
            return CommandResult::Rejected(format!("invalid session {session:?}"));
        };
        if let Some(problem) = self.session_problem(&record.spec) {
            return CommandResult::Rejected(format!("invalid session {session:?}: {problem}"));
        }
        if self.lock_delay(key, now_ms).is_some() {
            return CommandResult::Bool(false);
        }
        if self.kv.get(key).and_then(|r| r.session.as_deref()).is_some_and(|s| s != session) {
            return CommandResult::Bool(false);
        }
        self.kv_store(index, key, value, flags, changes, |record| {
            // Re-acquiring by the holder does not count as a new acquisition.
            if record.session.as_deref() != Some(session) {
                record.session = Some(session.to_string());
                record.lock_index += 1;
            }
        });
        CommandResult::Bool(true)
    }

    pub(crate) fn kv_unlock(
        &mut self,
        index: u64,
        key: &str,
        value: &[u8],
        flags: u64,
        session: &str,
        changes: &mut Changes,
    ) -> CommandResult {
        if self.kv.get(key).and_then(|r| r.session.as_deref()) != Some(session) {
            return CommandResult::Bool(false);
        }
        self.kv_store(index, key, value, flags, changes, |record| record.session = None);
        CommandResult::Bool(true)
    }
}
