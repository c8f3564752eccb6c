//! Reconciles a `KVEntry` into one catalog key: the value inline or from a ConfigMap or Secret,
//! the user's flags in the low 32 bits and census's ownership mark above them. A key someone
//! else wrote is never overwritten; a key census wrote and someone changed is put back.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};

use crate::conditions::{Want, merge};
use crate::context::{Context, Error, WrittenKey, apply_status, now};
use crate::crd::{DeletionPolicy, KVEntry, KVEntryStatus};
use crate::desired::{Invalid, MAX_VALUE_BYTES, ValueSource, plan_key, too_large};
use crate::ownership::{KeyOwner, key_flags, key_owner, owner_key, user_flags};
use crate::port::CatalogPort;

pub const FINALIZER: &str = "census.dev/kv";

const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile<P: CatalogPort>(entry: Arc<KVEntry>, ctx: Arc<Context<P>>) -> Result<Action, Error> {
    let ns = entry.namespace().ok_or_else(|| Error::NoNamespace(entry.name_any()))?;
    let api: Api<KVEntry> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, entry, |event| async {
        match event {
            Finalizer::Apply(entry) => apply(&entry, &ns, &api, &ctx).await,
            Finalizer::Cleanup(entry) => cleanup(&entry, &ns, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Reads the value from its source; `Err(Invalid)` when the source is missing or too large.
async fn resolve<P: CatalogPort>(
    source: ValueSource,
    ns: &str,
    ctx: &Context<P>,
) -> Result<Result<Vec<u8>, Invalid>, Error> {
    let missing = |what: String| Invalid { reason: "ValueSourceNotFound", message: what };
    let value = match source {
        ValueSource::Inline(v) => Some(v),
        ValueSource::ConfigMap { name, key } => {
            let Some(cm) = Api::<ConfigMap>::namespaced(ctx.client.clone(), ns).get_opt(&name).await? else {
                return Ok(Err(missing(format!("ConfigMap {ns}/{name} not found"))));
            };
            let text = cm.data.as_ref().and_then(|d| d.get(&key)).map(|s| s.clone().into_bytes());
            let binary = cm.binary_data.as_ref().and_then(|d| d.get(&key)).map(|b| b.0.clone());
            match text.or(binary) {
                Some(v) => Some(v),
                None => return Ok(Err(missing(format!("ConfigMap {ns}/{name} has no key {key:?}")))),
            }
        }
        ValueSource::Secret { .. } if !ctx.read_secrets => {
            return Ok(Err(Invalid {
                reason: "SecretsNotReadable",
                message: "this census may not read Secrets (install with rbac.readSecrets=true)".into(),
            }));
        }
        ValueSource::Secret { name, key } => {
            let Some(secret) = Api::<Secret>::namespaced(ctx.client.clone(), ns).get_opt(&name).await? else {
                return Ok(Err(missing(format!("Secret {ns}/{name} not found"))));
            };
            match secret.data.as_ref().and_then(|d| d.get(&key)) {
                Some(v) => Some(v.0.clone()),
                None => return Ok(Err(missing(format!("Secret {ns}/{name} has no key {key:?}")))),
            }
        }
    };
    let value = value.unwrap_or_default();
    if value.len() > MAX_VALUE_BYTES {
        return Ok(Err(too_large(value.len())));
    }
    Ok(Ok(value))
}

/// What a pass did to the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    Unchanged,
    Created,
    Updated,
    Repaired,
    /// Held by something census did not write (or by another KVEntry): left alone.
    NotOwned(KeyOwner),
}

/// Puts `want` unless the key belongs to someone else. `wrote_before`: this entry wrote the key
/// (its status says so), so a missing mark means someone overwrote it.
pub async fn sync_key<P: CatalogPort>(
    port: &P,
    owner: &str,
    want: &WrittenKey,
    wrote_before: bool,
) -> Result<KeyOutcome, Error> {
    let outcome = match port.key(&want.key) {
        Some(have) if have.value == want.value && have.flags == want.flags => {
            return Ok(KeyOutcome::Unchanged);
        }
        None if wrote_before => KeyOutcome::Repaired,
        None => KeyOutcome::Created,
        Some(have) => match key_owner(have.flags, owner) {
            KeyOwner::Me if !wrote_before => KeyOutcome::Updated,
            _ if wrote_before => KeyOutcome::Repaired,
            other => return Ok(KeyOutcome::NotOwned(other)),
        },
    };
    port.put_key(&want.key, want.value.clone(), want.flags).await?;
    Ok(outcome)
}

async fn apply<P: CatalogPort>(
    entry: &KVEntry,
    ns: &str,
    api: &Api<KVEntry>,
    ctx: &Context<P>,
) -> Result<Action, Error> {
    let name = entry.name_any();
    let owner = owner_key(ns, &name);
    let reference = entry.object_ref(&());
    let previous = entry.status.clone().unwrap_or_default();
    let resolved = match plan_key(&entry.spec) {
        Ok(source) => resolve(source, ns, ctx).await?,
        Err(invalid) => Err(invalid),
    };
    let value = match resolved {
        Ok(value) => value,
        Err(invalid) => {
            ctx.event(&reference, true, invalid.reason, invalid.message.clone()).await;
            let wanted = [
                Want::new("Ready", false, invalid.reason, invalid.message.clone()),
                Want::new("Synced", false, invalid.reason, invalid.message.clone()),
            ];
            write_status(entry, api, &previous, &wanted, previous.key.clone(), previous.modify_index).await?;
            return Ok(Action::requeue(RESYNC));
        }
    };
    let key = entry.spec.key.clone();

    // A renamed key: the old one goes if this entry still owns it.
    if let Some(old) = previous.key.as_ref().filter(|old| **old != key)
        && ctx.port.key(old).is_some_and(|k| key_owner(k.flags, &owner) == KeyOwner::Me)
    {
        ctx.port.delete_key(old).await?;
    }

    let want = WrittenKey { key: key.clone(), value, flags: key_flags(&owner, entry.spec.flags) };
    let last = ctx.written().keys.get(&owner).cloned();
    // Written before by this entry: its status names this key with an index, or this leader
    // wrote exactly this (a spec that changed the value is not a repair).
    let status_says = previous.key.as_deref() == Some(key.as_str()) && previous.modify_index.is_some();
    let wrote_before = last.as_ref().map_or(status_says, |l| *l == want);
    let outcome = sync_key(ctx.port.as_ref(), &owner, &want, wrote_before).await?;
    let (synced, index) = match &outcome {
        KeyOutcome::NotOwned(by) => {
            let (reason, message) = match by {
                KeyOwner::OtherEntry => {
                    ("KeyOwnedByAnotherEntry", format!("key {key} is written by another KVEntry"))
                }
                _ => (
                    "KeyNotOwned",
                    format!(
                        "key {key} exists and was not written by census; delete it to let census manage it"
                    ),
                ),
            };
            ctx.event(&reference, true, reason, message.clone()).await;
            (Want::new("Synced", false, reason, message), previous.modify_index)
        }
        other => {
            match other {
                KeyOutcome::Repaired => {
                    ctx.event(
                        &reference,
                        true,
                        "DriftRepaired",
                        format!("restored key {key} changed or deleted outside census"),
                    )
                    .await
                }
                KeyOutcome::Created | KeyOutcome::Updated => {
                    ctx.event(&reference, false, "Synced", format!("wrote key {key}")).await
                }
                _ => {}
            }
            ctx.written().keys.insert(owner.clone(), want.clone());
            let index = ctx.port.key(&key).map(|k| k.modify_index);
            (Want::new("Synced", true, "Synced", format!("key {key} written")), index)
        }
    };
    let ready = Want::new("Ready", synced.status, synced.reason.clone(), synced.message.clone());
    let written_key = if synced.status { Some(key) } else { previous.key.clone() };
    write_status(entry, api, &previous, &[ready, synced], written_key, index).await?;
    Ok(Action::requeue(RESYNC))
}

async fn write_status(
    entry: &KVEntry,
    api: &Api<KVEntry>,
    previous: &KVEntryStatus,
    wanted: &[Want],
    key: Option<String>,
    modify_index: Option<u64>,
) -> Result<(), Error> {
    let status = KVEntryStatus {
        conditions: merge(&previous.conditions, wanted, entry.meta().generation, now()),
        observed_generation: entry.meta().generation,
        key,
        modify_index,
    };
    if status != *previous {
        apply_status(api, &entry.name_any(), serde_json::to_value(&status).unwrap_or_default()).await?;
    }
    Ok(())
}

async fn cleanup<P: CatalogPort>(entry: &KVEntry, ns: &str, ctx: &Context<P>) -> Result<Action, Error> {
    let owner = owner_key(ns, &entry.name_any());
    ctx.written().keys.remove(&owner);
    let Some(key) = entry.status.as_ref().and_then(|s| s.key.clone()) else {
        return Ok(Action::await_change());
    };
    let reference = entry.object_ref(&());
    match ctx.port.key(&key) {
        Some(have) if key_owner(have.flags, &owner) == KeyOwner::Me => match entry.spec.deletion_policy {
            DeletionPolicy::Delete => {
                ctx.port.delete_key(&key).await?;
                ctx.event(&reference, false, "Deleted", format!("deleted key {key}")).await;
            }
            DeletionPolicy::Retain => {
                // Released: the user's flags without census's mark, so nothing claims it.
                ctx.port.put_key(&key, have.value, user_flags(have.flags)).await?;
                ctx.event(&reference, false, "Retained", format!("kept key {key}, released")).await;
            }
        },
        _ => {}
    }
    Ok(Action::await_change())
}
