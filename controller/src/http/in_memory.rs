//! An HTTP API in one process over an in-memory `Cluster` (no Raft, no sockets but a gossip one
//! on an ephemeral port): for the router's own tests and the HTTP fuzz target
//! (`fuzz/fuzz_targets/http_request.rs`), which drive `router` without a network.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::{AgentInfo, AppState};
use crate::agent::checks::CheckRunner;
use crate::catalog::{Catalog, Command, CommandResult};
use crate::cluster::Cluster;
use crate::gossip::{Gossip, GossipConfig, GossipError, GossipTiming};
use crate::raft::{ClusterError, ReadMode};

/// Why the in-memory agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum InMemoryError {
    #[error(transparent)]
    Gossip(#[from] GossipError),
    #[error("check runner: {0}")]
    Checks(#[from] reqwest::Error),
}

/// A single-process cluster: every write applies at once, every read is current.
struct MemoryCluster {
    catalog: Arc<Catalog>,
    index: Mutex<u64>,
}

impl Cluster for MemoryCluster {
    fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    fn write(&self, cmd: Command) -> BoxFuture<'_, Result<(u64, CommandResult), ClusterError>> {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        *index += 1;
        let done = (*index, self.catalog.apply(*index, &cmd));
        Box::pin(async move { Ok(done) })
    }

    fn read_barrier(&self, _mode: ReadMode) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }

    fn known_leader(&self) -> bool {
        true
    }

    fn last_contact_ms(&self) -> u64 {
        0
    }
}

/// The state of an agent named `n1` in `dc1` whose cluster is this process.
pub async fn state() -> Result<AppState, InMemoryError> {
    let catalog = Arc::new(Catalog::new());
    let cluster = Arc::new(MemoryCluster { catalog: catalog.clone(), index: Mutex::new(0) });
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let gossip = Gossip::start(GossipConfig {
        name: "n1".into(),
        bind: any,
        advertise: any,
        tags: Default::default(),
        timing: GossipTiming::default(),
        keyring: crate::gossip::keyring::Keyring::disabled(),
    })
    .await?;
    let checks = CheckRunner::new("n1".into(), catalog.clone())?;
    Ok(AppState {
        cluster,
        server: None,
        servers: None,
        gossip,
        catalog: catalog.clone(),
        info: Arc::new(AgentInfo {
            node_name: "n1".into(),
            node_id: "11111111-2222-4333-8444-555555555555".into(),
            datacenter: "dc1".into(),
            advertise_addr: "10.0.0.1".into(),
            enable_script_checks: false,
            data_dir: None,
        }),
        checks,
        discovery: Arc::default(),
        leave: Arc::default(),
        reload: tokio::sync::mpsc::channel(1).0,
        events: Arc::default(),
        acl: Arc::new(crate::acl::Acl::new(Default::default(), catalog.clone(), "dc1".into())),
    })
}
