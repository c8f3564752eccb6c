//! Keeps the agent's view equal to what the sidecar wants: registers, updates and removes
//! instances, heartbeats their leases, and after any failure adopts what the agent holds (removing
//! this owner's strays, re-registering the rest under the same IDs, so nothing is duplicated).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use census_client::{Client, ClientError};
use tokio::sync::watch;

use crate::process::{BACKOFF_MIN, next_backoff};

use super::instance::{Health, Instance, Lease, OWNER_META, health_check_id, lease_check_id};

pub type Desired = BTreeMap<String, Instance>;

pub struct CatalogSync {
    client: Client,
    owner: String,
    lease: Lease,
    /// What the agent holds as far as this sidecar knows: the last successful push.
    pushed: Desired,
    /// Set after any failure: the next `apply` first reconciles with what the agent lists.
    must_adopt: bool,
}

fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Status { status: 404, .. })
}

impl CatalogSync {
    pub fn new(client: Client, owner: String, lease: Lease) -> Self {
        CatalogSync { client, owner, lease, pushed: Desired::new(), must_adopt: true }
    }

    fn lease_output(&self) -> String {
        format!("census-sidecar {} is reporting", self.owner)
    }

    /// Brings the agent to `desired`. On error the sync state is marked for adoption, so calling
    /// again after the agent returns repairs everything.
    pub async fn apply(&mut self, desired: &Desired) -> Result<(), ClientError> {
        let result = self.apply_inner(desired).await;
        if result.is_err() {
            self.must_adopt = true;
        }
        result
    }

    async fn apply_inner(&mut self, desired: &Desired) -> Result<(), ClientError> {
        if self.must_adopt {
            self.adopt(desired).await?;
            self.must_adopt = false;
        }
        let gone: Vec<String> = self.pushed.keys().filter(|id| !desired.contains_key(*id)).cloned().collect();
        for id in gone {
            if self.deregister(&id).await? {
                tracing::info!(service = %id, "deregistered");
            }
            self.pushed.remove(&id);
        }
        for (id, want) in desired {
            match self.pushed.get(id) {
                Some(have) if have == want => continue,
                Some(have) if have.same_registration(want) => {
                    self.push_status(want).await?;
                    tracing::info!(service = %id, status = want.status.health.as_str(), "status changed");
                }
                _ => {
                    self.client.agent_service_register(&want.registration(&self.owner, self.lease)).await?;
                    self.push_status(want).await?;
                    tracing::info!(service = %id, status = want.status.health.as_str(), "registered");
                }
            }
            self.pushed.insert(id.clone(), want.clone());
        }
        Ok(())
    }

    async fn push_status(&self, instance: &Instance) -> Result<(), ClientError> {
        self.client
            .agent_check_update(&lease_check_id(&instance.id), Health::Passing.as_str(), &self.lease_output())
            .await?;
        if instance.check_name.is_some() {
            self.client
                .agent_check_update(
                    &health_check_id(&instance.id),
                    instance.status.health.as_str(),
                    &instance.status.output,
                )
                .await?;
        }
        Ok(())
    }

    /// Renews every lease (a no-op write on the agent unless something changed). An instance the
    /// agent no longer knows (reaped, agent restarted) triggers adoption at the next `apply`.
    pub async fn heartbeat(&mut self) -> Result<(), ClientError> {
        let pushed: Vec<Instance> = self.pushed.values().cloned().collect();
        for instance in pushed {
            if let Err(e) = self.push_status(&instance).await {
                self.must_adopt = true;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Removes this owner's instances that are not wanted (a restart, containers gone while the
    /// sidecar was away) and forgets what was pushed, so everything wanted is registered again.
    async fn adopt(&mut self, desired: &Desired) -> Result<(), ClientError> {
        let held = self.client.agent_services().await?;
        for (id, service) in held {
            let ours = service.meta.get(OWNER_META) == Some(&self.owner);
            if ours && !desired.contains_key(&id) && self.deregister(&id).await? {
                tracing::info!(service = %id, "removed stray instance of this owner");
            }
        }
        self.pushed.clear();
        Ok(())
    }

    /// Deregisters everything this sidecar pushed (graceful exit of a pod's sidecar).
    pub async fn deregister_all(&mut self) -> Result<(), ClientError> {
        let ids: Vec<String> = self.pushed.keys().cloned().collect();
        for id in ids {
            if self.deregister(&id).await? {
                tracing::info!(service = %id, "deregistered on exit");
            }
            self.pushed.remove(&id);
        }
        Ok(())
    }

    /// Deregisters `id`: `false` when the agent did not know it (already gone is fine).
    async fn deregister(&self, id: &str) -> Result<bool, ClientError> {
        match self.client.agent_service_deregister(id).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// What to do with the instances when the sidecar is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    Deregister,
    /// Leave them to their lease: a restarted sidecar adopts them before it runs out.
    KeepLease,
}

/// Follows `desired` until `stop` resolves: applies each change at once, heartbeats every
/// third of the lease TTL, and retries with backoff (250 ms to 4 s) while the agent is away.
/// `adopt_every` also reconciles with the agent's list on that period (`-cleanup`).
pub async fn run(
    mut sync: CatalogSync,
    mut desired: watch::Receiver<Desired>,
    stop: impl Future<Output = ()>,
    on_exit: OnExit,
    adopt_every: Option<Duration>,
) {
    tokio::pin!(stop);
    let mut heartbeat = tokio::time::interval((sync.lease.ttl / 3).max(Duration::from_millis(100)));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut adopt_tick = tokio::time::interval(adopt_every.unwrap_or(Duration::from_secs(3600)));
    adopt_tick.tick().await;
    let mut retry: Option<Duration> = None;
    desired.mark_changed();
    loop {
        let retry_sleep = tokio::time::sleep(retry.unwrap_or(Duration::from_secs(3600)));
        tokio::select! {
            _ = &mut stop => break,
            changed = desired.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                if retry.is_none() {
                    if let Err(e) = sync.heartbeat().await {
                        tracing::warn!(error = %e, "catalog unreachable; instances will be re-registered when it returns");
                        retry = Some(BACKOFF_MIN);
                    }
                    continue;
                }
            }
            _ = retry_sleep, if retry.is_some() => {}
            _ = adopt_tick.tick(), if adopt_every.is_some() => sync.must_adopt = true,
        }
        let want = desired.borrow_and_update().clone();
        match sync.apply(&want).await {
            Ok(()) => {
                if retry.take().is_some() {
                    tracing::info!(instances = want.len(), "catalog reachable again; instances reconciled");
                }
            }
            Err(e) => {
                let next = retry.map_or(BACKOFF_MIN, next_backoff);
                if retry.is_none() {
                    tracing::warn!(error = %e, "catalog unreachable; retrying");
                }
                retry = Some(next);
            }
        }
    }
    if on_exit == OnExit::Deregister
        && let Err(e) = sync.deregister_all().await
    {
        tracing::warn!(error = %e, "could not deregister on exit; the lease will expire them");
    }
}
