//! Notices catalog changes made behind the operator's back: after every catalog change, what
//! each owner last wrote is compared with what the catalog holds, and owners that differ are
//! reconciled again (which puts their entries back, with an Event). A passing count that moved
//! (a check the leader runs) re-reconciles too, so the status follows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;

use crate::context::{Context, WrittenKey, WrittenService};
use crate::crd::{KVEntry, Service};
use crate::ownership::{owner_of, owner_ref};
use crate::port::{CatalogPort, StoredInstance};

/// How long catalog changes are gathered before one comparison pass (a burst of writes, such as
/// the operator's own, costs one pass).
const SETTLE: Duration = Duration::from_millis(100);

/// Whether the catalog still holds exactly what was written for an owner (`mine`: its instances).
pub fn service_matches(mine: &[&StoredInstance], written: &WrittenService) -> bool {
    let mut passing: Vec<&str> = mine.iter().filter(|s| s.passing).map(|s| s.instance.id.as_str()).collect();
    let mut was_passing: Vec<&str> = written.passing.iter().map(String::as_str).collect();
    passing.sort_unstable();
    was_passing.sort_unstable();
    mine.len() == written.instances.len()
        && written.instances.iter().all(|w| mine.iter().any(|m| m.instance == *w))
        && passing == was_passing
}

fn key_matches<P: CatalogPort>(port: &P, written: &WrittenKey) -> bool {
    port.key(&written.key).is_some_and(|k| k.value == written.value && k.flags == written.flags)
}

/// Runs until the senders' receivers are gone (the controllers stopped).
pub async fn watch<P: CatalogPort>(
    ctx: Arc<Context<P>>,
    services: UnboundedSender<ObjectRef<Service>>,
    keys: UnboundedSender<ObjectRef<KVEntry>>,
) {
    loop {
        ctx.port.changed().await;
        tokio::time::sleep(SETTLE).await;
        let stored = ctx.port.instances();
        let mut by_owner: HashMap<&str, Vec<&StoredInstance>> = HashMap::new();
        for s in &stored {
            if let Some(owner) = owner_of(&s.instance.meta) {
                by_owner.entry(owner).or_default().push(s);
            }
        }
        let (stale_services, stale_keys) = {
            let written = ctx.written();
            let services: Vec<String> = written
                .services
                .iter()
                .filter(|(owner, w)| {
                    !service_matches(by_owner.get(owner.as_str()).map_or(&[], Vec::as_slice), w)
                })
                .map(|(owner, _)| owner.clone())
                .collect();
            let keys: Vec<String> = written
                .keys
                .iter()
                .filter(|(_, w)| !key_matches(ctx.port.as_ref(), w))
                .map(|(owner, _)| owner.clone())
                .collect();
            (services, keys)
        };
        for owner in stale_services {
            tracing::debug!(%owner, "catalog differs from what the Service wrote");
            if let Some(r) = owner_ref::<Service>(&owner)
                && services.unbounded_send(r).is_err()
            {
                return;
            }
        }
        for owner in stale_keys {
            tracing::debug!(%owner, "catalog differs from what the KVEntry wrote");
            if let Some(r) = owner_ref::<KVEntry>(&owner)
                && keys.unbounded_send(r).is_err()
            {
                return;
            }
        }
    }
}
