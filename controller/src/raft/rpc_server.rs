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
use crate::catalog::CommandResult;
use crate::client_agent::servers::{AgentWrite, AgentWriteAnswer, ServerAddrs};
use crate::dns::remote::FactsRequest;
use crate::http::authz::Authz;
use crate::http::authz_records::{check_registration, check_services_of_registration};
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
/// records, a whole catalog, nested batches) comes through a server's HTTP API, where the
/// request's token is checked, never through this route.
fn an_agents_write(cmd: &Command) -> bool {
    matches!(cmd, Command::Register(_) | Command::PruneNode { .. } | Command::DeregisterNode { .. })
}

/// A client agent's write: any server checks it and hands the allowed parts to the leader.
async fn write(State(svc): State<RaftService>, body: Bytes) -> Response {
    let write: AgentWrite = match decode(&body) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let (mut allowed, refused) = match vet_agent_write(&svc, write) {
        Ok(vetted) => vetted,
        Err(denied) => {
            return encode(&Remote::<AgentWriteAnswer>::Err(RemoteError::PermissionDenied(denied)));
        }
    };
    let command = match allowed.len() {
        0 => return encode(&Remote::Ok(AgentWriteAnswer { index: 0, result: CommandResult::Done, refused })),
        1 => allowed.remove(0),
        _ => Command::Batch(allowed),
    };
    let answer: Remote<_> = match svc.node.write(command).await {
        Ok((index, result)) => Ok(AgentWriteAnswer { index, result, refused }),
        Err(crate::raft::ClusterError::NoLeader) => Err(RemoteError::NotLeader),
        Err(crate::raft::ClusterError::DiskFull { free, needed }) => {
            Err(RemoteError::DiskFull { free, needed })
        }
        Err(other) => Err(RemoteError::failed(other)),
    };
    encode(&answer)
}

/// The parts of a client agent's write to apply, and the refused ones (by position, with
/// Consul's 403 text).
type Vetted = (Vec<Command>, Vec<(usize, String)>);

/// `Err` when a part is not a client agent's kind of write: then nothing is applied.
fn vet_agent_write(svc: &RaftService, write: AgentWrite) -> Result<Vetted, String> {
    if !write.parts.iter().all(|(_, cmd)| an_agents_write(cmd)) {
        return Err(
            "Permission denied: only a client agent's node registrations are written through this route"
                .into(),
        );
    }
    if !svc.acl.enabled() {
        return Ok((write.parts.into_iter().map(|(_, cmd)| cmd).collect(), Vec::new()));
    }
    let (mut allowed, mut refused) = (Vec::new(), Vec::new());
    let mut nodes_written = std::collections::HashSet::new();
    for (position, (token, cmd)) in write.parts.into_iter().enumerate() {
        let authz = match svc.acl.resolve_sent(&token) {
            Ok(identity) => Authz(identity),
            Err(e) => {
                refused.push((position, e.to_string()));
                continue;
            }
        };
        match svc.node.catalog.read(|s| allowed_part(&authz, s, &cmd, &mut nodes_written)) {
            Ok(()) => allowed.push(cmd),
            Err(e) => refused.push((position, e.to_string())),
        }
    }
    Ok((allowed, refused))
}

/// What one part of a client agent's write needs: a registration as the catalog endpoint checks
/// it; pruning the node's services and checks, `node:write`; removing a node, `node:write` on it
/// or `operator:write` (force-leave). `nodes_written` holds the nodes earlier parts of the write
/// registered with `node:write` (and did not remove): a later part that leaves such a node as it
/// is (`skip_node_update`) need not be allowed to create it, since a service's token rarely holds
/// `node:write`.
fn allowed_part(
    authz: &Authz,
    s: &crate::catalog::CatalogState,
    cmd: &Command,
    nodes_written: &mut std::collections::HashSet<String>,
) -> Result<(), ApiError> {
    match cmd {
        Command::Register(reg) if reg.skip_node_update && nodes_written.contains(&reg.node.name) => {
            check_services_of_registration(authz, s, reg)
        }
        Command::Register(reg) => {
            check_registration(authz, s, reg)?;
            if !reg.skip_node_update && authz.allows(Resource::Node, &reg.node.name, Access::Write) {
                nodes_written.insert(reg.node.name.clone());
            }
            Ok(())
        }
        Command::PruneNode { node, .. } => authz.require(Resource::Node, node, Access::Write),
        Command::DeregisterNode { node } => {
            if !authz.allows(Resource::Operator, "", Access::Write) {
                authz.require(Resource::Node, node, Access::Write)?;
            }
            nodes_written.remove(node);
            Ok(())
        }
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
        assert!(an_agents_write(&register) && an_agents_write(&prune));
        assert!(an_agents_write(&Command::DeregisterNode { node: "n1".into() }));
        let kv = Command::KvSet { key: "k".into(), value: b"v".to_vec(), flags: 0, cas: None };
        assert!(!an_agents_write(&kv));
        assert!(!an_agents_write(&Command::Batch(vec![register, prune])), "parts are never nested batches");
    }

    fn authz(rules: &str) -> Authz {
        let rules = crate::acl::rules::parse(rules).expect("rules");
        let authorizer = crate::acl::authorizer::Authorizer::from_rules(
            rules,
            crate::acl::authorizer::DefaultPolicy::Deny,
        );
        Authz(Arc::new(crate::acl::resolver::Identity {
            accessor_id: "test".into(),
            authorizer: Arc::new(authorizer),
            named: true,
        }))
    }

    fn register(node: &str, address: &str, skip_node_update: bool) -> Command {
        Command::Register(Registration {
            node: NodeSpec { name: node.into(), address: address.into(), ..Default::default() },
            skip_node_update,
            ..Default::default()
        })
    }

    /// Vets `parts` in order as `vet_agent_write` does; true for each allowed part.
    fn vet(s: &crate::catalog::CatalogState, parts: &[(&Authz, Command)]) -> Vec<bool> {
        let mut written = std::collections::HashSet::new();
        parts.iter().map(|(authz, cmd)| allowed_part(authz, s, cmd, &mut written).is_ok()).collect()
    }

    #[test]
    fn a_node_is_changed_only_with_node_write_whatever_the_order_of_parts() {
        let catalog = crate::catalog::Catalog::new();
        catalog.apply(1, &register("victim", "10.0.0.1", false));
        let web = authz(r#"service "web" { policy = "write" }"#);
        let agent = authz(r#"node "n1" { policy = "write" }"#);
        catalog.read(|s| {
            // A made-up record of an existing node, "skipped", then the same record for real.
            let crafted = [
                (&web, register("victim", "192.0.2.66", true)),
                (&web, register("victim", "192.0.2.66", false)),
            ];
            assert_eq!(vet(s, &crafted), [true, false], "the second part changes the node: node:write");
            // The agent's own sync: its node with node:write, then its services leaving it as is.
            let sync =
                [(&agent, register("n1", "10.0.0.2", false)), (&web, register("n1", "10.0.0.2", true))];
            assert_eq!(vet(s, &sync), [true, true]);
            // The node created by a part the token could not write is no excuse for the next.
            let unowned =
                [(&web, register("n2", "10.0.0.3", false)), (&web, register("n2", "10.0.0.3", true))];
            assert_eq!(vet(s, &unowned), [false, false]);
            // Removed, then recreated on the strength of the removal: refused.
            let operator = authz(r#"operator = "write""#);
            let recreate = [
                (&agent, register("n1", "10.0.0.2", false)),
                (&operator, Command::DeregisterNode { node: "n1".into() }),
                (&web, register("n1", "10.0.0.2", true)),
            ];
            assert_eq!(vet(s, &recreate), [true, true, false]);
        });
    }
}
