//! The Raft port's HTTP routes: Raft's own RPCs, forwarded writes and read barriers, discovery.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use rustls_pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bootstrap::{Discovery, Hello};
use super::membership::MembershipChange;
use super::node::{ClusterNode, Remote, RemoteError};
use super::reads::ReadMode;
use super::types::{NodeId, TypeConfig};
use crate::acl::{Access, Resource};
use crate::catalog::Command;
use crate::client_agent::servers::{AgentWrite, ServerAddrs};
use crate::dns::remote::FactsRequest;
use crate::http::authz::Authz;
use crate::http::authz_records::check_registration;
use crate::http::error::ApiError;

#[derive(Clone)]
pub struct RaftService {
    pub node: Arc<ClusterNode>,
    pub discovery: Arc<Discovery>,
    /// Where this server gossips, told to agents that join through this port.
    pub gossip_addr: String,
    pub gossip: Arc<crate::gossip::Gossip>,
    /// This server's datacenter (node identities grant only in theirs).
    pub datacenter: String,
    /// Checks client agents' writes (`/raft/write`) when ACLs are on.
    pub acl: Arc<crate::acl::Acl>,
}

fn encode<T: Serialize>(value: &T) -> Response {
    match bincode::serialize(value) {
        Ok(bytes) => (StatusCode::OK, bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn decode<T: DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    bincode::deserialize(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()).into_response())
}

async fn append(State(svc): State<RaftService>, body: Bytes) -> Response {
    let req: AppendEntriesRequest<TypeConfig> = match decode(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let leader_commit = req.leader_commit.map(|l| l.index).unwrap_or(0);
    let answer = svc.node.raft.append_entries(req).await;
    // A leader whose term is behind this server's is refused (`HigherVote`): that is no contact.
    if answer.as_ref().is_ok_and(|a| !matches!(a, openraft::raft::AppendEntriesResponse::HigherVote(_))) {
        svc.node.note_leader_contact(leader_commit);
    }
    encode(&answer)
}

async fn vote(State(svc): State<RaftService>, body: Bytes) -> Response {
    let req: VoteRequest<NodeId> = match decode(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if svc.node.recovering() {
        let refused: Result<_, openraft::error::RaftError<NodeId>> = Ok(svc.node.refused_vote());
        return encode(&refused);
    }
    let answer = svc.node.raft.vote(req).await;
    if answer.as_ref().is_ok_and(|a| a.vote_granted) {
        svc.node.note_vote_granted();
    }
    encode(&answer)
}

/// A voter asked whether it would vote for a candidate (no term changes): see election.rs.
async fn pre_vote(State(svc): State<RaftService>, body: Bytes) -> Response {
    let req: super::PreVoteRequest = match decode(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    encode(&svc.node.pre_vote(&req))
}

async fn snapshot(State(svc): State<RaftService>, body: Bytes) -> Response {
    let req: InstallSnapshotRequest<TypeConfig> = match decode(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    encode(&svc.node.raft.install_snapshot(req).await)
}

async fn forward(State(svc): State<RaftService>, body: Bytes) -> Response {
    let cmd: Command = match decode(&body) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    encode(&svc.node.write_as_leader(cmd).await)
}

/// Whether `cmd` is what a client agent writes: its node's registrations and their pruning
/// (anti-entropy), and a node's removal (leave, force-leave). Anything else (KV, sessions, ACL
/// records, a whole catalog) comes through a server's HTTP API, where the request's token is
/// checked, never through this route.
fn an_agents_write(cmd: &Command) -> bool {
    match cmd {
        Command::Register(_) | Command::PruneNode { .. } | Command::DeregisterNode { .. } => true,
        Command::Batch(commands) => commands.iter().all(an_agents_write),
        _ => false,
    }
}

/// A client agent's write: any server checks it and hands it to the leader. With ACLs on, each
/// part must be allowed to the token it carries, as Consul's servers check a client agent's
/// catalog registrations.
async fn write(State(svc): State<RaftService>, body: Bytes) -> Response {
    let write: AgentWrite = match decode(&body) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    if let Err(denied) = authorize_agent_write(&svc, &write) {
        return encode(&Remote::<(u64, crate::catalog::CommandResult)>::Err(RemoteError::PermissionDenied(
            denied,
        )));
    }
    let answer: Remote<_> = svc.node.write(write.into_command()).await.map_err(|e| match e {
        crate::raft::ClusterError::NoLeader => RemoteError::NotLeader,
        crate::raft::ClusterError::DiskFull { free, needed } => RemoteError::DiskFull { free, needed },
        other => RemoteError::failed(other),
    });
    encode(&answer)
}

/// `Err` with Consul's 403 text when a part is not a client agent's kind of write, or (ACLs on)
/// its token does not allow it.
fn authorize_agent_write(svc: &RaftService, write: &AgentWrite) -> Result<(), String> {
    if !write.parts.iter().all(|(_, cmd)| an_agents_write(cmd)) {
        return Err(
            "Permission denied: only a client agent's node registrations are written through this route"
                .into(),
        );
    }
    if !svc.acl.enabled() {
        return Ok(());
    }
    for (token, cmd) in &write.parts {
        let identity = svc.acl.resolve_sent(token).map_err(|e| e.to_string())?;
        let authz = Authz(identity);
        svc.node.catalog.read(|s| allowed(&authz, s, cmd)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What a client agent's write needs: a registration as the catalog endpoint checks it; pruning
/// the node's services and checks, `node:write`; removing a node, `node:write` on it or
/// `operator:write` (force-leave).
fn allowed(authz: &Authz, s: &crate::catalog::CatalogState, cmd: &Command) -> Result<(), ApiError> {
    match cmd {
        Command::Register(reg) => check_registration(authz, s, reg),
        Command::PruneNode { node, .. } => authz.require(Resource::Node, node, Access::Write),
        Command::DeregisterNode { node } => match authz.allows(Resource::Operator, "", Access::Write) {
            true => Ok(()),
            false => authz.require(Resource::Node, node, Access::Write),
        },
        Command::Batch(commands) => commands.iter().try_for_each(|c| allowed(authz, s, c)),
        _ => Err(ApiError::PermissionDenied("Permission denied".into())),
    }
}

/// A client agent's DNS lookup: answered from this server's state when it heard from the leader
/// within the agent's `max_stale`, else after a default-mode read barrier (as Consul's DNS
/// retries a too-stale answer against the leader).
async fn dns(State(svc): State<RaftService>, body: Bytes) -> Response {
    let asked: FactsRequest = match decode(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let fresh_enough = asked.max_stale_ms.is_some_and(|max| svc.node.last_contact_ms() <= max);
    let mode = if fresh_enough { ReadMode::Stale } else { ReadMode::Default };
    let answer: Remote<_> = match svc.node.read_barrier(mode).await {
        Ok(()) => Ok(svc.node.catalog.read(|state| asked.answer(state))),
        Err(crate::raft::ClusterError::NoLeader) => Err(RemoteError::NotLeader),
        Err(other) => Err(RemoteError::failed(other)),
    };
    encode(&answer)
}

/// A client agent resolving a token: what it grants here (`None`: unknown), read after a
/// default-mode barrier so a token just created through another server is found.
async fn acl(State(svc): State<RaftService>, body: Bytes) -> Response {
    let secret: String = match decode(&body) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let answer: Remote<Option<crate::acl::Grants>> = match svc.node.read_barrier(ReadMode::Default).await {
        Ok(()) => Ok(svc.node.catalog.read(|s| crate::acl::resolver::grants_of(s, &secret, &svc.datacenter))),
        Err(crate::raft::ClusterError::NoLeader) => Err(RemoteError::NotLeader),
        Err(other) => Err(RemoteError::failed(other)),
    };
    encode(&answer)
}

/// Every member this server knows, for an agent joining (or syncing) through this port.
async fn members(State(svc): State<RaftService>) -> Response {
    let answer: Remote<_> = svc.gossip.member_states().await.map_err(RemoteError::failed);
    encode(&answer)
}

/// Who this server is and where it gossips: what an agent joining through this port asks first.
async fn whois(State(svc): State<RaftService>) -> Response {
    encode(&ServerAddrs {
        name: svc.node.me.name.clone(),
        raft_addr: svc.node.me.raft_addr.clone(),
        http_addr: svc.node.me.http_addr.clone(),
        gossip_addr: svc.gossip_addr.clone(),
    })
}

async fn read_index(State(svc): State<RaftService>, body: Bytes) -> Response {
    let linearizable: bool = match decode(&body) {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    encode(&svc.node.read_index_as_leader(linearizable).await)
}

async fn membership(State(svc): State<RaftService>, body: Bytes) -> Response {
    let change: MembershipChange = match decode(&body) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    encode(&change.run_here(&svc.node).await)
}

/// A peer asks this server to get it into the cluster (through the leader).
async fn join(State(svc): State<RaftService>, body: Bytes) -> Response {
    let change: MembershipChange = match decode(&body) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let answer: Remote<()> = svc.node.membership_via_leader(change).await.map_err(RemoteError::failed);
    encode(&answer)
}

/// The leader is stepping down and asks this server to stand for election.
async fn elect(State(svc): State<RaftService>) -> Response {
    encode(&svc.node.elect_now().await)
}

async fn hello(State(svc): State<RaftService>, body: Bytes) -> Response {
    let theirs: Hello = match decode(&body) {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    svc.discovery.learn(&theirs);
    encode(&svc.discovery.hello(&svc.node))
}

pub fn router(svc: RaftService) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/pre-vote", post(pre_vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/forward", post(forward))
        .route("/raft/write", post(write))
        .route("/raft/whois", post(whois))
        .route("/raft/dns", post(dns))
        .route("/raft/acl", post(acl))
        .route("/raft/members", post(members))
        .route("/raft/read-index", post(read_index))
        .route("/raft/membership", post(membership))
        .route("/raft/join", post(join))
        .route("/raft/hello", post(hello))
        .route("/raft/elect", post(elect))
        .layer(DefaultBodyLimit::disable())
        .with_state(svc)
}

/// `router` behind mutual TLS with `verify_server_hostname`: the servers' routes answer only
/// peers whose certificate is valid for `server_name` (`peer_role`).
pub fn router_for_servers_named(svc: RaftService, server_name: ServerName<'static>) -> Router {
    router(svc).layer(axum::middleware::from_fn_with_state(
        Arc::new(server_name),
        super::peer_role::require_server_certificate,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{NodeSpec, Registration};

    #[test]
    fn the_agent_route_takes_node_registrations_only() {
        let register = Command::Register(Registration {
            node: NodeSpec { name: "n1".into(), address: "10.0.0.1".into(), ..Default::default() },
            ..Default::default()
        });
        let prune = Command::PruneNode { node: "n1".into(), keep_services: vec![], keep_checks: vec![] };
        assert!(an_agents_write(&Command::Batch(vec![register.clone(), prune])));
        assert!(an_agents_write(&Command::DeregisterNode { node: "n1".into() }));
        let kv = Command::KvSet { key: "k".into(), value: b"v".to_vec(), flags: 0, cas: None };
        assert!(!an_agents_write(&kv));
        assert!(
            !an_agents_write(&Command::Batch(vec![register, kv])),
            "one foreign command refuses the batch"
        );
    }
}
