//! The servers a client agent forwards to: the alive servers gossip knows (tags `role=consul`,
//! `port`, `http`), and until gossip knows any, the ones its join addresses named. The agent
//! sticks to one server and moves to another when that one stops answering, as Consul's agent
//! rotates its server list.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::catalog::{Command, CommandResult};
use crate::dns::remote::{FactsError, FactsFuture, FactsRequest, FactsSource};
use crate::gossip::Gossip;
use crate::raft::ClusterError;
use crate::raft::network::{PeerError, PeerTransport};
use crate::raft::node::{Remote, RemoteError};

/// A server's addresses, as gossip tags or a join answer tell them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAddrs {
    pub name: String,
    pub raft_addr: String,
    pub http_addr: String,
    pub gossip_addr: String,
}

/// A client agent's write through a server's Raft port: each command with the token it acts
/// with (its registration's, or the agent token for the node itself), as Consul's agent sends
/// each sync with its own token. `Debug` leaves the tokens out.
#[derive(Clone, Serialize, Deserialize)]
pub struct AgentWrite {
    pub parts: Vec<(String, Command)>,
}

impl std::fmt::Debug for AgentWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.parts.iter().map(|(_, cmd)| cmd)).finish()
    }
}

impl AgentWrite {
    pub fn one(token: String, cmd: Command) -> AgentWrite {
        AgentWrite { parts: vec![(token, cmd)] }
    }
}

/// What a server did with an `AgentWrite`: the allowed parts were applied as one command (at
/// `index`, with `result`: one part's own, or the batch's); `refused` names the parts (by
/// position) that their tokens did not allow, with Consul's 403 text. A refused part is left
/// out, not the whole write, so one service's bad token does not stop its node's sync.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentWriteAnswer {
    pub index: u64,
    pub result: CommandResult,
    pub refused: Vec<(usize, String)>,
}

pub struct ServerPool {
    gossip: std::sync::Arc<Gossip>,
    transport: PeerTransport,
    /// HTTP/2 to the servers' HTTP port, for the requests the agent forwards.
    http: reqwest::Client,
    seeds: Mutex<Vec<ServerAddrs>>,
    /// Which server (by position in the sorted list) this agent talks to now.
    preferred: AtomicUsize,
}

const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// A DNS client retries after about a second; a lookup that takes longer is not awaited.
const DNS_TIMEOUT: Duration = Duration::from_secs(2);

impl ServerPool {
    pub fn new(
        gossip: std::sync::Arc<Gossip>,
        transport: PeerTransport,
    ) -> Result<ServerPool, reqwest::Error> {
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .http2_keep_alive_interval(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .build()?;
        Ok(ServerPool {
            gossip,
            transport,
            http,
            seeds: Mutex::default(),
            preferred: AtomicUsize::new(rand::random::<u16>().into()),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn add_seed(&self, server: ServerAddrs) {
        let mut seeds = self.seeds.lock().unwrap_or_else(|p| p.into_inner());
        if !seeds.contains(&server) {
            seeds.push(server);
        }
    }

    /// The servers to try, the preferred one first.
    pub fn servers(&self) -> Vec<ServerAddrs> {
        let mut all: Vec<ServerAddrs> = self
            .gossip
            .alive_servers()
            .into_iter()
            .filter_map(|p| {
                Some(ServerAddrs {
                    raft_addr: p.raft_addr()?,
                    http_addr: p.tag("http").to_string(),
                    gossip_addr: p.addr.to_string(),
                    name: p.name,
                })
            })
            .collect();
        if all.is_empty() {
            all = self.seeds.lock().unwrap_or_else(|p| p.into_inner()).clone();
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        if !all.is_empty() {
            let start = self.preferred.load(Ordering::Relaxed) % all.len();
            all.rotate_left(start);
        }
        all
    }

    /// How this agent reaches servers' Raft ports (TLS when configured).
    pub fn transport(&self) -> &PeerTransport {
        &self.transport
    }

    /// The server named `name` did not answer: prefer the next one from now on.
    pub fn failed(&self, name: &str) {
        let servers = self.servers();
        if servers.first().is_some_and(|s| s.name == name) {
            self.preferred.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Applies `write` through a server, which checks each part against its token and hands
    /// the allowed ones to the leader as one command.
    pub async fn write(&self, write: &AgentWrite) -> Result<AgentWriteAnswer, ClusterError> {
        self.call_any("write", write, WRITE_TIMEOUT).await
    }

    /// Calls `path` on the Raft port of the preferred server, the next one when a server does
    /// not answer at all (an answer, even an error, ends the search).
    async fn call_any<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, ClusterError> {
        let servers = self.servers();
        if servers.is_empty() {
            return Err(ClusterError::NoServers);
        }
        for server in servers {
            let answer: Result<Remote<Resp>, PeerError> =
                self.transport.call(&server.raft_addr, path, req, timeout).await;
            match answer {
                Ok(Ok(done)) => return Ok(done),
                Ok(Err(RemoteError::NotLeader)) => return Err(ClusterError::NoLeader),
                Ok(Err(RemoteError::DiskFull { free, needed })) => {
                    return Err(ClusterError::DiskFull { free, needed });
                }
                Ok(Err(RemoteError::Failed(msg))) => return Err(ClusterError::Forward(msg)),
                Ok(Err(RemoteError::PermissionDenied(msg))) => {
                    return Err(ClusterError::PermissionDenied(msg));
                }
                Err(e) => {
                    tracing::debug!(server = %server.name, error = %e, "server did not answer; trying another");
                    self.failed(&server.name);
                }
            }
        }
        Err(ClusterError::NoServers)
    }
}

/// A client agent's ACL checks ask the servers what a token grants (`/raft/acl`).
impl crate::acl::GrantsSource for ServerPool {
    fn grants(&self, secret: String) -> crate::acl::resolver::GrantsFuture<'_> {
        Box::pin(async move { self.call_any("acl", &secret, DNS_TIMEOUT).await.map_err(|e| e.to_string()) })
    }
}

/// DNS on a client agent asks the servers for the facts (`/raft/dns`).
impl FactsSource for ServerPool {
    fn facts(&self, request: FactsRequest) -> FactsFuture<'_> {
        Box::pin(async move {
            self.call_any("dns", &request, DNS_TIMEOUT).await.map_err(|e| FactsError(e.to_string()))
        })
    }
}
