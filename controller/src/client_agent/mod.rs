//! A client agent: it holds no Raft state and never votes. It keeps its own node's services and
//! checks (registered through the agent endpoints and definition files), persists them in its
//! data dir, runs their checks, and syncs them to the catalog by anti-entropy; every other request
//! is forwarded to a server (`http::forward`).

pub mod anti_entropy;
pub mod servers;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use self::servers::ServerPool;
use crate::catalog::{Catalog, CatalogState, Command, CommandResult};
use crate::cluster::Cluster;
use crate::raft::{ClusterError, ReadMode};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("local agent state {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("local agent state {path} is unreadable: {source}")]
    Corrupt { path: String, source: bincode::Error },
}

/// The client agent's side of the `Cluster` port.
pub struct ClientCluster {
    catalog: Arc<Catalog>,
    /// Serializes local writes and their persistence; holds the last local index.
    writes: Mutex<u64>,
    state_file: Option<PathBuf>,
    pub servers: Arc<ServerPool>,
}

const STATE_FILE: &str = "agent-state.bin";

impl ClientCluster {
    /// Opens the agent's own state, as the data dir kept it across restarts.
    pub fn open(data_dir: Option<&Path>, servers: Arc<ServerPool>) -> Result<ClientCluster, ClientError> {
        let catalog = Arc::new(Catalog::new());
        let state_file = data_dir.map(|d| d.join(STATE_FILE));
        if let Some(path) = &state_file {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let state = CatalogState::from_bytes(&bytes).map_err(|source| ClientError::Corrupt {
                        path: path.display().to_string(),
                        source,
                    })?;
                    catalog.replace(state);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ClientError::Io { path: path.display().to_string(), source }),
            }
        }
        let last = catalog.read(|s| s.last_index());
        Ok(ClientCluster { catalog, writes: Mutex::new(last), state_file, servers })
    }

    fn persist(&self) -> Result<(), ClientError> {
        let Some(path) = &self.state_file else { return Ok(()) };
        let io = |source| ClientError::Io { path: path.display().to_string(), source };
        let bytes = self
            .catalog
            .read(|s| s.to_bytes())
            .map_err(|source| ClientError::Corrupt { path: path.display().to_string(), source })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn apply(&self, cmd: &Command) -> Result<(u64, CommandResult), ClusterError> {
        let mut last = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let index = *last + 1;
        let result = self.catalog.apply(index, cmd);
        *last = index;
        self.persist().map_err(|e| ClusterError::Storage(e.to_string()))?;
        Ok((index, result))
    }
}

impl Cluster for ClientCluster {
    fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    fn write(&self, cmd: Command) -> BoxFuture<'_, Result<(u64, CommandResult), ClusterError>> {
        Box::pin(async move { self.apply(&cmd) })
    }

    /// The agent's own state is always current here.
    fn read_barrier(&self, _mode: ReadMode) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }

    fn known_leader(&self) -> bool {
        !self.servers.servers().is_empty()
    }

    fn last_contact_ms(&self) -> u64 {
        0
    }
}
