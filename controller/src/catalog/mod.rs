//! The catalog domain: tables, commands, deterministic apply, queries and watch indexes.
//!
//! It knows nothing of Raft, HTTP, DNS or Kubernetes; adapters around it feed it commands in log
//! order and read from it.

mod apply;
pub mod archive;
pub mod command;
pub mod documents;
pub mod model;
pub mod query;
mod restore;
pub mod session;
pub mod state;
pub mod summary;
pub mod txn;
pub mod watch;

#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;

use std::sync::RwLock;

pub use command::{CheckRegistration, Command, CommandResult, NodeSpec, Registration, ServiceSpec};
pub use documents::{DocKind, DocWrite, Document};
pub use model::{CheckKind, CheckRecord, CheckSpec, CheckStatus, KvRecord, NodeRecord, ServiceRecord};
pub use session::{SessionBehavior, SessionRecord, SessionSpec};
pub use state::{CatalogState, Changes, Table};
pub use watch::{Subscription, WatchHub, WatchKey};

/// The live catalog: state behind a lock, and the hub that wakes readers after each apply.
#[derive(Default)]
pub struct Catalog {
    state: RwLock<CatalogState>,
    hub: WatchHub,
}

/// One log entry handed to the catalog: its index and, for application entries, the command.
pub struct LogItem<'a> {
    pub index: u64,
    pub command: Option<&'a Command>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn hub(&self) -> &WatchHub {
        &self.hub
    }

    /// The index clients see for what log entry `log_index` wrote (they differ after a restore).
    pub fn client_index_of(&self, log_index: u64) -> u64 {
        self.read(|s| log_index + s.index_base)
    }

    /// Runs `f` under the read lock.
    pub fn read<R>(&self, f: impl FnOnce(&CatalogState) -> R) -> R {
        let guard = self.state.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// Applies entries in log order under one write lock, then wakes readers once per change.
    pub fn apply_batch<'a>(&self, items: impl IntoIterator<Item = LogItem<'a>>) -> Vec<CommandResult> {
        let mut results = Vec::new();
        let mut notices = Vec::new();
        let mut last = None;
        {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            for item in items {
                last = Some(item.index);
                match item.command {
                    Some(cmd) => {
                        let (result, changes) = state.apply(item.index, cmd);
                        if !changes.is_empty() {
                            notices.push((item.index, changes));
                        }
                        results.push(result);
                    }
                    None => state.note_applied(item.index),
                }
            }
        }
        for (index, changes) in &notices {
            if changes.reset {
                self.hub.notify_reset(*index);
            } else {
                self.hub.notify(*index, changes);
            }
        }
        if let Some(index) = last {
            self.hub.set_applied(index);
        }
        results
    }

    /// Applies one command (tests and tools; the server goes through `apply_batch`).
    pub fn apply(&self, index: u64, command: &Command) -> CommandResult {
        self.apply_batch([LogItem { index, command: Some(command) }]).pop().unwrap_or(CommandResult::Done)
    }

    /// Replaces the whole catalog (snapshot install) and wakes every reader.
    pub fn replace(&self, new_state: CatalogState) {
        let index = new_state.last_index();
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = new_state;
        self.hub.notify_reset(index);
        self.hub.set_applied(index);
    }
}
