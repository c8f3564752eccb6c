//! What the reconcilers need of the catalog. The census agent implements it over its Raft
//! cluster; the reconcilers never see Raft, HTTP or the catalog's own types.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// A service instance as the operator writes it (on the operator's own catalog node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub service: String,
    pub address: String,
    pub port: u16,
    pub tags: Vec<String>,
    /// Includes the ownership keys ([`crate::ownership`]).
    pub meta: BTreeMap<String, String>,
    /// The pod's Ready condition, for instances from a selector; `None` for static endpoints.
    pub pod_ready: Option<bool>,
    pub check: Option<InstanceCheck>,
}

/// A check definition the leader runs against one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceCheck {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub deregister_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Http { url: String },
    Tcp { address: String },
    Grpc { address: String, service: String },
    Ttl { ttl: Duration },
}

/// An instance as the catalog holds it: what was written plus what only the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInstance {
    pub instance: Instance,
    /// Every check of the instance passes.
    pub passing: bool,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub value: Vec<u8>,
    pub flags: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// This server is not (or no longer) the leader; the reconcilers stop.
    #[error("not the leader")]
    NotLeader,
    /// The catalog refused the write (as it would over HTTP).
    #[error("catalog refused the write: {0}")]
    Rejected(String),
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
}

/// The catalog seen from the operator. Reads are local (the leader's state machine is current);
/// writes go through Raft and answer the index they were applied at.
pub trait CatalogPort: Send + Sync + 'static {
    /// Every instance on the operator's catalog node, owned or not.
    fn instances(&self) -> Vec<StoredInstance>;
    /// The instances whose owner meta is `owner`.
    fn owned_by(&self, owner: &str) -> Vec<StoredInstance> {
        let mut all = self.instances();
        all.retain(|s| crate::ownership::owner_of(&s.instance.meta) == Some(owner));
        all
    }
    /// The instance with this ID on the operator's node, whoever wrote it.
    fn instance(&self, id: &str) -> Option<StoredInstance> {
        self.instances().into_iter().find(|s| s.instance.id == id)
    }
    fn register(&self, instance: Instance) -> impl Future<Output = Result<u64, PortError>> + Send;
    fn deregister(&self, id: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    fn key(&self, key: &str) -> Option<StoredKey>;
    fn put_key(
        &self,
        key: &str,
        value: Vec<u8>,
        flags: u64,
    ) -> impl Future<Output = Result<u64, PortError>> + Send;
    fn delete_key(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Resolves after the next change of services, checks or keys anywhere in the catalog.
    fn changed(&self) -> impl Future<Output = ()> + Send;
    /// Whether this server leads now.
    fn leading(&self) -> bool;
    /// Resolves once `leading()` no longer answers `was_leading`.
    fn leadership_changed(&self, was_leading: bool) -> impl Future<Output = ()> + Send;
}
