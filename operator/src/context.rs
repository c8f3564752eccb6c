//! What every reconcile shares while this server leads: the Kubernetes client, the catalog, the
//! pod cache, the event recorder, and a record of what was last written (to tell a spec change
//! from a change made behind the operator's back).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{BoxFuture, FutureExt, Shared};

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use crate::port::{CatalogPort, Instance, PortError};

/// The field manager of every status the operator writes (server-side apply).
pub const FIELD_MANAGER: &str = "census-operator";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Catalog(#[from] PortError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0} has no namespace")]
    NoNamespace(String),
    #[error("the pod cache stopped")]
    CacheClosed,
    /// This server stopped leading while the reconcile waited; the next leader redoes it.
    #[error("leadership was lost")]
    TermEnded,
}

/// Resolves when this server's term of leadership ends.
pub type TermEnd = Shared<BoxFuture<'static, ()>>;

/// What the operator last wrote for one owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenService {
    pub instances: Vec<Instance>,
    /// IDs of the instances that were passing when the status was written.
    pub passing: Vec<String>,
    /// Instances the catalog reaped (critical past deregisterCriticalServiceAfter): not put back
    /// while they stay as they were.
    pub reaped: Vec<Instance>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenKey {
    pub key: String,
    pub value: Vec<u8>,
    pub flags: u64,
}

#[derive(Debug, Default)]
pub struct Written {
    /// By owner (`namespace/name`).
    pub services: HashMap<String, WrittenService>,
    pub keys: HashMap<String, WrittenKey>,
}

pub struct Context<P> {
    pub client: Client,
    pub port: Arc<P>,
    pub pods: Store<Pod>,
    recorder: Recorder,
    written: Mutex<Written>,
    /// Whether KVEntries may read Secrets (the chart's `rbac.readSecrets`).
    pub read_secrets: bool,
    term_end: TermEnd,
}

impl<P: CatalogPort> Context<P> {
    pub fn new(client: Client, port: Arc<P>, pods: Store<Pod>, instance: String) -> Context<P> {
        let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: Some(instance) };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            port,
            pods,
            written: Mutex::new(Written::default()),
            read_secrets: true,
            term_end: futures::future::pending().boxed().shared(),
        }
    }

    /// Waits inside a reconcile (for a cache) give up when `end` resolves. A controller shut
    /// down gracefully keeps its watch streams, and so their caches' writers, until every
    /// reconcile in flight has returned: a reconcile waiting for a cache that never filled
    /// would hold the shutdown, and the next term, forever.
    pub fn ending_with(mut self, end: TermEnd) -> Context<P> {
        self.term_end = end;
        self
    }

    /// Waits until the pod cache has listed every pod, or the term ends.
    pub async fn pods_ready(&self) -> Result<(), Error> {
        let ready = std::pin::pin!(self.pods.wait_until_ready());
        match futures::future::select(ready, self.term_end.clone()).await {
            futures::future::Either::Left((ready, _)) => ready.map_err(|_| Error::CacheClosed),
            futures::future::Either::Right(((), _)) => Err(Error::TermEnded),
        }
    }

    /// Resolves when this term ends (never, unless `ending_with` was given an end).
    pub fn term_end(&self) -> TermEnd {
        self.term_end.clone()
    }

    /// KVEntries that name a Secret get a condition instead of a read the RBAC would refuse.
    pub fn without_secrets(mut self) -> Context<P> {
        self.read_secrets = false;
        self
    }

    pub fn written(&self) -> MutexGuard<'_, Written> {
        // A reconcile that panicked mid-update leaves a record that is at worst stale: the next
        // reconcile rewrites it.
        self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes an Event about `regarding`; failures are logged, never fatal (events are advice).
    pub async fn event(&self, regarding: &ObjectReference, warning: bool, reason: &str, note: String) {
        let ev = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, regarding).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}

/// Writes `status` with server-side apply under the operator's field manager.
pub async fn apply_status<K>(api: &Api<K>, name: &str, status: serde_json::Value) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(&patch)).await?;
    Ok(())
}

pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
}
