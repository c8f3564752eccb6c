//! Raft traffic between servers: bincode over HTTP/2 (prior knowledge), one multiplexed connection
//! per peer that stays open, so appends pipeline without new connections.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::{NodeId, ServerNode, TypeConfig};

/// Why a call to a peer's Raft port failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer {addr} unreachable: {source}")]
    Unreachable { addr: String, source: reqwest::Error },
    /// The peer took longer than the call's deadline: busy, not gone.
    #[error("peer {addr} did not answer within {after:?}")]
    TimedOut { addr: String, after: Duration },
    #[error("peer {addr} answered {status}")]
    Status { addr: String, status: u16 },
    #[error("encoding a raft message: {0}")]
    Codec(#[from] bincode::Error),
}

/// An HTTP/2 client for the Raft port of any peer: plain (prior knowledge), or TLS when the
/// agent has TLS for its internal RPC (`tls.internal_rpc`).
#[derive(Clone)]
pub struct PeerTransport {
    /// Shared by every clone, so that new certificates (SIGHUP) reach every user at once.
    http: std::sync::Arc<std::sync::RwLock<reqwest::Client>>,
    scheme: &'static str,
}

impl PeerTransport {
    pub fn new() -> Result<PeerTransport, reqwest::Error> {
        PeerTransport::with_tls(None)
    }

    /// `tls`: the client config that checks servers (and presents this agent's certificate).
    pub fn with_tls(tls: Option<rustls::ClientConfig>) -> Result<PeerTransport, reqwest::Error> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let http = std::sync::Arc::new(std::sync::RwLock::new(PeerTransport::client(tls)?));
        Ok(PeerTransport { http, scheme })
    }

    fn client(tls: Option<rustls::ClientConfig>) -> Result<reqwest::Client, reqwest::Error> {
        let builder = reqwest::Client::builder()
            .http2_prior_knowledge()
            .http2_keep_alive_interval(Duration::from_secs(5))
            .http2_keep_alive_while_idle(true)
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true);
        match tls {
            Some(config) => builder.use_preconfigured_tls(config).build(),
            None => builder.build(),
        }
    }

    /// New TLS settings (certificates read again): connections made from now on use them.
    pub fn replace_tls(&self, tls: rustls::ClientConfig) -> Result<(), reqwest::Error> {
        let fresh = PeerTransport::client(Some(tls))?;
        *self.http.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// POSTs a bincode body to `http://ADDR/raft/PATH` and decodes the bincode answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        let body = bincode::serialize(req)?;
        let unreachable = |source: reqwest::Error| {
            if source.is_timeout() {
                PeerError::TimedOut { addr: addr.to_string(), after: timeout }
            } else {
                PeerError::Unreachable { addr: addr.to_string(), source }
            }
        };
        let http = self.http.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let resp = http
            .post(format!("{}://{addr}/raft/{path}", self.scheme))
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(PeerError::Status { addr: addr.to_string(), status: resp.status().as_u16() });
        }
        let bytes = resp.bytes().await.map_err(unreachable)?;
        Ok(bincode::deserialize(&bytes)?)
    }
}

/// openraft's view of the transport: one `PeerClient` per target.
#[derive(Clone)]
pub struct Network {
    transport: PeerTransport,
}

impl Network {
    pub fn new(transport: PeerTransport) -> Network {
        Network { transport }
    }
}

pub struct PeerClient {
    transport: PeerTransport,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &ServerNode) -> PeerClient {
        PeerClient { transport: self.transport.clone(), target, addr: node.raft_addr.clone() }
    }
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, ServerNode, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn rpc<Req, Resp, E>(&self, path: &str, req: &Req, option: &RPCOption) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Resp, RaftError<NodeId, E>> =
            self.transport.call(&self.addr, path, req, option.hard_ttl()).await.map_err(|e| match e {
                // openraft stops replicating to an unreachable peer for 500 ms; a peer that was
                // only slow to answer (a large append under load, whose deadline is one heartbeat
                // interval) is retried at once instead, or every write stalls for those 500 ms.
                PeerError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                other => RPCError::Network(NetworkError::new(&other)),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.rpc("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.rpc("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.rpc("vote", &rpc, &option).await
    }
}
