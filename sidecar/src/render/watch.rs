//! One blocking query per dependency, each in its own task: new data goes into the shared store and
//! wakes the render loop; identical data is ignored; failures back off and are retried forever.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use census_client::Client;
use rand::Rng;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::deps::Dependency;
use super::fetch::fetch;
use super::helpers::Shared;
use super::status::Status;
use crate::process::{BACKOFF_MIN, next_backoff};

/// How long one blocking query waits at the server.
const BLOCK: Duration = Duration::from_secs(60);

/// The running watchers, keyed by dependency.
pub struct Watchers {
    client: Client,
    shared: Arc<Shared>,
    status: Arc<Status>,
    changed: UnboundedSender<Dependency>,
    tasks: HashMap<Dependency, JoinHandle<()>>,
}

impl Watchers {
    pub fn new(
        client: Client,
        shared: Arc<Shared>,
        status: Arc<Status>,
        changed: UnboundedSender<Dependency>,
    ) -> Self {
        Watchers { client, shared, status, changed, tasks: HashMap::new() }
    }

    /// Starts a watcher for every dependency in `used` that has none.
    pub fn start(&mut self, used: &BTreeSet<Dependency>) {
        for dep in used {
            if !self.tasks.contains_key(dep) {
                let task = tokio::spawn(watch(
                    dep.clone(),
                    self.client.clone(),
                    self.shared.clone(),
                    self.status.clone(),
                    self.changed.clone(),
                ));
                self.tasks.insert(dep.clone(), task);
            }
        }
    }

    /// Stops the watchers of dependencies the last complete render no longer used.
    pub fn retain(&mut self, used: &BTreeSet<Dependency>) {
        let unused: Vec<Dependency> = self.tasks.keys().filter(|d| !used.contains(*d)).cloned().collect();
        for dep in unused {
            if let Some(task) = self.tasks.remove(&dep) {
                task.abort();
            }
            self.shared.forget(&dep);
            self.status.forget(&dep);
        }
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

async fn watch(
    dep: Dependency,
    client: Client,
    shared: Arc<Shared>,
    status: Arc<Status>,
    changed: UnboundedSender<Dependency>,
) {
    let mut index = 0u64;
    let mut backoff = BACKOFF_MIN;
    loop {
        match fetch(&client, &dep, index, BLOCK).await {
            Ok(fetched) => {
                status.watch_ok(&dep);
                backoff = BACKOFF_MIN;
                if fetched.index < index && !matches!(dep, Dependency::File(_)) {
                    tracing::info!(%dep, from = index, to = fetched.index, "catalog index went backwards; reset");
                }
                // An index of 0 would turn the next query into a busy poll.
                index = fetched.index.max(1);
                if shared.update(&dep, fetched.value) && changed.send(dep.clone()).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(%dep, error = %e, retry_in = ?backoff, "catalog query failed; keeping the last data");
                status.watch_failed(&dep, e.to_string());
                // After an outage the server may have restarted with a lower index: ask without
                // blocking first.
                index = 0;
                let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 4);
                tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                backoff = next_backoff(backoff);
            }
        }
    }
}
