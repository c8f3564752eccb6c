//! Runs the reconcilers only while this census server leads the Raft cluster. Each term of
//! leadership starts from empty caches: nothing is reconciled, and no orphan is removed, before
//! the caches have listed everything (so a restart or failover never mass-deregisters).

use std::sync::Arc;
use std::time::Duration;

use futures::future::Either;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::context::{Context, Error, TermEnd};
use crate::crd::{KVEntry, Service};
use crate::desired::selects;
use crate::ownership::{NODE, owner_key, owner_of, owner_ref, pod_instance_id};
use crate::port::CatalogPort;
use crate::{drift, kv_entry, service};

#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Watch one namespace; `None` watches all.
    pub namespace: Option<String>,
    /// This server's name, as Events report it.
    pub instance: String,
    /// Watch and read Secrets for KVEntry values (needs RBAC to read Secrets).
    pub read_secrets: bool,
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Forever: wait to lead, reconcile until leadership is lost, repeat.
pub async fn run<P: CatalogPort>(client: Client, port: Arc<P>, config: OperatorConfig) {
    loop {
        if !port.leading() {
            port.leadership_changed(false).await;
            continue;
        }
        tracing::info!(namespace = ?config.namespace, "leading: starting the Service and KVEntry reconcilers");
        let port2 = port.clone();
        let stop: TermEnd = async move { port2.leadership_changed(true).await }.boxed().shared();
        run_term(client.clone(), port.clone(), &config, stop).await;
        tracing::info!("reconcilers stopped");
    }
}

fn error_policy<K, P>(obj: Arc<K>, error: &Error, _ctx: Arc<Context<P>>) -> Action
where
    K: ResourceExt,
{
    match error {
        // This server stopped leading; the next leader reconciles it.
        Error::TermEnded => tracing::debug!(name = %obj.name_any(), "reconcile left to the next leader"),
        _ => {
            tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), %error, "reconcile failed; retrying")
        }
    }
    Action::requeue(Duration::from_secs(2))
}

/// Services whose selector matches the pod, or that hold an instance for it.
fn services_for_pod<P: CatalogPort>(
    pod: &Pod,
    services: &Store<Service>,
    ctx: &Context<P>,
) -> Vec<ObjectRef<Service>> {
    let (Some(ns), Some(pod_name)) = (pod.namespace(), pod.metadata.name.clone()) else { return Vec::new() };
    let written = ctx.written();
    services
        .state()
        .iter()
        .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
        .filter(|s| {
            let selected =
                s.spec.selector.as_ref().is_some_and(|sel| selects(sel, pod.metadata.labels.as_ref()));
            let owner = owner_key(&ns, &s.name_any());
            let id = pod_instance_id(&owner, &pod_name);
            selected || written.services.get(&owner).is_some_and(|w| w.instances.iter().any(|i| i.id == id))
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// KVEntries in `ns` whose value comes from the ConfigMap (`secret` false) or Secret `name`.
fn entries_using(
    entries: &Store<KVEntry>,
    ns: Option<String>,
    name: &str,
    secret: bool,
) -> Vec<ObjectRef<KVEntry>> {
    entries
        .state()
        .iter()
        .filter(|e| e.namespace() == ns)
        .filter(|e| {
            let from = e.spec.value_from.as_ref();
            let r = if secret {
                from.and_then(|f| f.secret_key_ref.as_ref())
            } else {
                from.and_then(|f| f.config_map_key_ref.as_ref())
            };
            r.is_some_and(|r| r.name == name)
        })
        .map(|e| ObjectRef::from_obj(e.as_ref()))
        .collect()
}

/// Removes instances owned by Services that no longer exist (deleted while no leader ran the
/// reconcilers and their finalizer was forced off), once the Service cache is complete.
async fn remove_orphans<P: CatalogPort>(
    ctx: Arc<Context<P>>,
    services: Store<Service>,
    namespace: Option<String>,
) {
    // The term may end before the cache fills; the controller then keeps its writer until this
    // returns, so waiting for the cache alone could wait forever.
    let ready = std::pin::pin!(services.wait_until_ready());
    if !matches!(futures::future::select(ready, ctx.term_end()).await, Either::Left((Ok(()), _))) {
        return;
    }
    for stored in ctx.port.instances() {
        let Some(owner) = owner_of(&stored.instance.meta).map(str::to_string) else { continue };
        let Some(resource) = owner_ref::<Service>(&owner) else { continue };
        if namespace.is_some() && resource.namespace != namespace {
            continue;
        }
        if services.get(&resource).is_none() {
            tracing::info!(instance = %stored.instance.id, %owner, node = NODE, "removing instance of a Service that no longer exists");
            if let Err(e) = ctx.port.deregister(&stored.instance.id).await {
                tracing::warn!(error = %e, "could not remove orphaned instance");
            }
        }
    }
}

async fn run_term<P: CatalogPort>(client: Client, port: Arc<P>, config: &OperatorConfig, stop: TermEnd) {
    let ns = &config.namespace;
    let (pods, pod_writer) = reflector::store();
    let mut ctx = Context::new(client.clone(), port, pods, config.instance.clone()).ending_with(stop.clone());
    if !config.read_secrets {
        ctx = ctx.without_secrets();
    }
    let ctx = Arc::new(ctx);
    let pod_events = watcher(api::<Pod>(&client, ns), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .touched_objects();
    let (svc_drift_tx, svc_drift_rx) = futures::channel::mpsc::unbounded();
    let (kv_drift_tx, kv_drift_rx) = futures::channel::mpsc::unbounded();

    let svc_controller = Controller::new(api::<Service>(&client, ns), watcher::Config::default());
    let svc_store = svc_controller.store();
    let mapper_store = svc_store.clone();
    let mapper_ctx = ctx.clone();
    let services = svc_controller
        .watches_stream(pod_events, move |pod| services_for_pod(&pod, &mapper_store, &mapper_ctx))
        .reconcile_on(svc_drift_rx)
        .graceful_shutdown_on(stop.clone())
        .run(service::reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "service controller");
            }
        });

    let kv_controller = Controller::new(api::<KVEntry>(&client, ns), watcher::Config::default());
    let kv_store = kv_controller.store();
    let (cm_store, secret_store) = (kv_store.clone(), kv_store.clone());
    let mut kv_controller =
        kv_controller.watches(api::<ConfigMap>(&client, ns), watcher::Config::default(), move |cm| {
            entries_using(&cm_store, cm.namespace(), &cm.name_any(), false)
        });
    if config.read_secrets {
        kv_controller =
            kv_controller.watches(api::<Secret>(&client, ns), watcher::Config::default(), move |s| {
                entries_using(&secret_store, s.namespace(), &s.name_any(), true)
            });
    }
    let keys = kv_controller
        .reconcile_on(kv_drift_rx)
        .graceful_shutdown_on(stop.clone())
        .run(kv_entry::reconcile, error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "kventry controller");
            }
        });

    let orphans = remove_orphans(ctx.clone(), svc_store, ns.clone());
    let drift = drift::watch(ctx.clone(), svc_drift_tx, kv_drift_tx);
    let background = async {
        tokio::join!(orphans, async {
            tokio::select! {
                _ = drift => {}
                _ = stop.clone() => {}
            }
        });
    };
    tokio::join!(services, keys, background);
}
