//! Reconciles a `Service` resource into catalog instances on the operator's node: registers what
//! the spec and the selected pods ask for, removes the instances it owns that are no longer
//! asked for, repairs changes made behind its back, and reports counts in the status.

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};

use crate::conditions::{Want, merge};
use crate::context::{Context, Error, WrittenService, apply_status, now};
use crate::crd::{Service, ServiceStatus};
use crate::desired::{Invalid, plan_service, service_name};
use crate::ownership::{owner_key, owner_of};
use crate::port::{CatalogPort, Instance};

/// Removed from a Service only after its instances left the catalog.
pub const FINALIZER: &str = "census.dev/catalog";

/// How often a Service is looked at even when nothing changed.
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile<P: CatalogPort>(svc: Arc<Service>, ctx: Arc<Context<P>>) -> Result<Action, Error> {
    let ns = svc.namespace().ok_or_else(|| Error::NoNamespace(svc.name_any()))?;
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, svc, |event| async {
        match event {
            Finalizer::Apply(svc) => apply(&svc, &ns, &api, &ctx).await,
            Finalizer::Cleanup(svc) => cleanup(&svc, &ns, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// What one pass changed in the catalog.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub updated: usize,
    /// Instances changed or removed by someone else, put back as last written.
    pub repaired: usize,
    pub removed: usize,
    /// Desired IDs held by an instance census did not write: left alone.
    pub conflicts: Vec<String>,
}

/// Makes the catalog hold `desired` for `owner`, touching only instances the owner wrote.
pub async fn sync_instances<P: CatalogPort>(
    port: &P,
    owner: &str,
    desired: &[Instance],
    last: Option<&WrittenService>,
) -> Result<Changes, Error> {
    let mut changes = Changes::default();
    let wrote_before = |want: &Instance| last.is_some_and(|l| l.instances.contains(want));
    for want in desired {
        match port.instance(&want.id) {
            Some(have) if have.instance == *want => continue,
            Some(have) if owner_of(&have.instance.meta) != Some(owner) && !wrote_before(want) => {
                changes.conflicts.push(want.id.clone());
                continue;
            }
            Some(_) if wrote_before(want) => changes.repaired += 1,
            Some(_) => changes.updated += 1,
            None if wrote_before(want) => changes.repaired += 1,
            None => changes.added += 1,
        }
        port.register(want.clone()).await?;
    }
    for have in port.owned_by(owner) {
        if !desired.iter().any(|d| d.id == have.instance.id) {
            port.deregister(&have.instance.id).await?;
            changes.removed += 1;
        }
    }
    Ok(changes)
}

/// Instances the catalog removed after their check stayed critical for
/// deregisterCriticalServiceAfter: they stay removed (not repaired) until they change (a new
/// pod, a new spec) or leadership moves.
fn reaped_instances<P: CatalogPort>(
    port: &P,
    desired: &[Instance],
    last: Option<&WrittenService>,
) -> Vec<Instance> {
    let Some(last) = last else { return Vec::new() };
    desired
        .iter()
        .filter(|want| {
            let already = last.reaped.contains(want);
            let reapable = want.check.as_ref().is_some_and(|c| c.deregister_after.is_some());
            let was_critical = last.instances.contains(want) && !last.passing.contains(&want.id);
            already || (reapable && was_critical && port.instance(&want.id).is_none())
        })
        .cloned()
        .collect()
}

async fn apply<P: CatalogPort>(
    svc: &Service,
    ns: &str,
    api: &Api<Service>,
    ctx: &Context<P>,
) -> Result<Action, Error> {
    let name = svc.name_any();
    let owner = owner_key(ns, &name);
    let reference = svc.object_ref(&());
    let plan = match plan_service(&svc.spec, ns, &name) {
        Ok(plan) => plan,
        Err(invalid) => {
            ctx.event(&reference, true, invalid.reason, invalid.message.clone()).await;
            write_invalid(svc, api, &invalid).await?;
            return Ok(Action::await_change());
        }
    };
    ctx.pods_ready().await?;
    let pods = ctx.pods.state();
    let desired =
        plan.instances(pods.iter().filter(|p| p.namespace().as_deref() == Some(ns)).map(|p| p.as_ref()));
    let last = ctx.written().services.get(&owner).cloned();
    let reaped = reaped_instances(ctx.port.as_ref(), &desired, last.as_ref());
    let desired: Vec<Instance> = desired.into_iter().filter(|d| !reaped.contains(d)).collect();
    let changes = sync_instances(ctx.port.as_ref(), &owner, &desired, last.as_ref()).await?;
    if changes.repaired > 0 {
        let note = format!(
            "restored {} instance(s) of {} changed or removed outside census",
            changes.repaired, plan.name
        );
        ctx.event(&reference, true, "DriftRepaired", note).await;
    }
    if changes.added + changes.updated + changes.removed > 0 {
        let note = format!(
            "{}: registered {}, updated {}, deregistered {} instance(s)",
            plan.name, changes.added, changes.updated, changes.removed
        );
        ctx.event(&reference, false, "Synced", note).await;
    }
    if !changes.conflicts.is_empty() {
        let note =
            format!("instance IDs held by entries census did not write: {}", changes.conflicts.join(", "));
        ctx.event(&reference, true, "Conflict", note).await;
    }

    let mine = ctx.port.owned_by(&owner);
    let passing: Vec<String> = mine.iter().filter(|s| s.passing).map(|s| s.instance.id.clone()).collect();
    let modify_index = mine.iter().map(|s| s.modify_index).max();
    ctx.written()
        .services
        .insert(owner, WrittenService { instances: desired.clone(), passing: passing.clone(), reaped });

    let total = desired.len();
    let synced = if changes.conflicts.is_empty() {
        Want::new("Synced", true, "Synced", format!("{total} instance(s) in the catalog"))
    } else {
        Want::new(
            "Synced",
            false,
            "Conflict",
            format!("{} instance ID(s) held by others", changes.conflicts.len()),
        )
    };
    let ready = if passing.is_empty() {
        Want::new("Ready", false, "NoPassingInstances", format!("0 of {total} instances passing"))
    } else {
        Want::new("Ready", true, "Passing", format!("{} of {total} instances passing", passing.len()))
    };
    let previous = svc.status.clone().unwrap_or_default();
    let status = ServiceStatus {
        conditions: merge(&previous.conditions, &[ready, synced], svc.meta().generation, now()),
        observed_generation: svc.meta().generation,
        service_name: Some(plan.name.clone()),
        instances: u32::try_from(total).unwrap_or(u32::MAX),
        passing: u32::try_from(passing.len()).unwrap_or(u32::MAX),
        modify_index,
    };
    if status != previous {
        apply_status(api, &name, serde_json::to_value(&status).unwrap_or_default()).await?;
    }
    Ok(Action::requeue(RESYNC))
}

async fn write_invalid(svc: &Service, api: &Api<Service>, invalid: &Invalid) -> Result<(), Error> {
    let previous = svc.status.clone().unwrap_or_default();
    let wanted = [
        Want::new("Ready", false, invalid.reason, invalid.message.clone()),
        Want::new("Synced", false, invalid.reason, invalid.message.clone()),
    ];
    let status = ServiceStatus {
        conditions: merge(&previous.conditions, &wanted, svc.meta().generation, now()),
        observed_generation: svc.meta().generation,
        service_name: Some(service_name(&svc.spec, &svc.name_any())),
        ..previous.clone()
    };
    if status != previous {
        apply_status(api, &svc.name_any(), serde_json::to_value(&status).unwrap_or_default()).await?;
    }
    Ok(())
}

async fn cleanup<P: CatalogPort>(svc: &Service, ns: &str, ctx: &Context<P>) -> Result<Action, Error> {
    let owner = owner_key(ns, &svc.name_any());
    let changes = sync_instances(ctx.port.as_ref(), &owner, &[], None).await?;
    ctx.written().services.remove(&owner);
    let note = format!("deregistered {} instance(s)", changes.removed);
    ctx.event(&svc.object_ref(&()), false, "Deregistered", note).await;
    Ok(Action::await_change())
}
