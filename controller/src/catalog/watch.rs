//! Watch indexes that wake blocked readers when an apply changes what they read.
//!
//! Readers subscribe before they read, so a change between the read and the wait is never missed.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use super::state::{Changes, Table};

/// What a blocked reader waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchKey {
    Tables(Vec<Table>),
    /// Anything about one service name.
    Service(String),
    /// Any key starting with the prefix (an exact key is its own prefix).
    KvPrefix(String),
}

/// A subscription: resolves when its key changed or the whole catalog was replaced.
pub struct Subscription {
    receivers: Vec<watch::Receiver<u64>>,
}

impl Subscription {
    /// Waits for the next change. Returns at once if the hub has gone away.
    pub async fn changed(&mut self) {
        if self.receivers.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.receivers.iter_mut().map(|rx| Box::pin(rx.changed()));
        let (result, _, _) = futures::future::select_all(waits).await;
        if result.is_err() {
            // Sender dropped: nothing will change any more; let the caller's deadline decide.
            std::future::pending::<()>().await;
        }
    }
}

pub struct WatchHub {
    tables: [watch::Sender<u64>; Table::ALL.len()],
    /// Bumped when a snapshot replaces the catalog: every reader re-reads.
    reset: watch::Sender<u64>,
    /// The last applied log index, for read barriers.
    applied: watch::Sender<u64>,
    services: Mutex<HashMap<String, watch::Sender<u64>>>,
    kv_prefixes: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Default for WatchHub {
    fn default() -> Self {
        WatchHub {
            tables: std::array::from_fn(|_| watch::channel(0).0),
            reset: watch::channel(0).0,
            applied: watch::channel(0).0,
            services: Mutex::new(HashMap::new()),
            kv_prefixes: Mutex::new(HashMap::new()),
        }
    }
}

fn subscribe_named(map: &Mutex<HashMap<String, watch::Sender<u64>>>, name: &str) -> watch::Receiver<u64> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(name.to_string()).or_insert_with(|| watch::channel(0).0).subscribe()
}

fn notify_named(map: &Mutex<HashMap<String, watch::Sender<u64>>>, name: &str, index: u64) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(tx) = map.get(name) {
        if tx.receiver_count() == 0 {
            map.remove(name);
        } else {
            tx.send_replace(index);
        }
    }
}

impl WatchHub {
    pub fn subscribe(&self, key: &WatchKey) -> Subscription {
        let mut receivers = vec![self.reset.subscribe()];
        match key {
            WatchKey::Tables(tables) => {
                receivers.extend(tables.iter().map(|t| self.tables[t.slot()].subscribe()))
            }
            WatchKey::Service(name) => receivers.push(subscribe_named(&self.services, name)),
            WatchKey::KvPrefix(prefix) => receivers.push(subscribe_named(&self.kv_prefixes, prefix)),
        }
        Subscription { receivers }
    }

    /// Wakes the readers of what `changes` touched.
    pub fn notify(&self, index: u64, changes: &Changes) {
        for table in &changes.tables {
            self.tables[table.slot()].send_replace(index);
        }
        for name in &changes.services {
            notify_named(&self.services, name, index);
        }
        if !changes.kv_keys.is_empty() {
            let registered: Vec<String> = {
                let map = self.kv_prefixes.lock().unwrap_or_else(|p| p.into_inner());
                if map.is_empty() {
                    return;
                }
                map.keys().cloned().collect()
            };
            // Few prefixes are watched at once; each key wakes the prefixes it starts with.
            for prefix in registered {
                if changes.kv_keys.iter().any(|k| k.starts_with(&prefix)) {
                    notify_named(&self.kv_prefixes, &prefix, index);
                }
            }
        }
    }

    /// Everything changed (snapshot installed): every reader re-reads.
    pub fn notify_reset(&self, index: u64) {
        self.reset.send_replace(index);
        for table in &self.tables {
            table.send_replace(index);
        }
    }

    pub fn set_applied(&self, index: u64) {
        self.applied.send_if_modified(|cur| {
            let moved = index > *cur;
            if moved {
                *cur = index;
            }
            moved
        });
    }

    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the applied index reaches `index`.
    pub async fn wait_applied(&self, index: u64) {
        let mut rx = self.applied.subscribe();
        // The sender lives in self, so wait_for only fails if self is dropped, which borrows forbid.
        let _ = rx.wait_for(|applied| *applied >= index).await;
    }
}
