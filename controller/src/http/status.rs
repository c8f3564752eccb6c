//! `/v1/status/*` and `/v1/operator/raft/*`.

use axum::extract::State;
use axum::response::Response;
use census_client::types::{RaftConfiguration, RaftServer};

use super::error::{ApiError, ApiResult};
use super::query::{Params, json_response};
use super::{AppState, empty_ok};
use crate::raft::MembershipChange;
use crate::raft::ReadMode;

pub async fn leader(State(state): State<AppState>) -> ApiResult<Response> {
    let addr = state.server()?.leader().map(|(_, n)| n.raft_addr).unwrap_or_default();
    json_response(&addr, false)
}

pub async fn peers(State(state): State<AppState>) -> ApiResult<Response> {
    let peers: Vec<String> = state
        .server()?
        .servers()
        .into_iter()
        .filter(|(_, _, voter)| *voter)
        .map(|(_, n, _)| n.raft_addr)
        .collect();
    json_response(&peers, false)
}

pub async fn raft_configuration(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    if params.mode != ReadMode::Stale && !state.cluster.known_leader() {
        return Err(crate::raft::ClusterError::NoLeader.into());
    }
    let server = state.server()?;
    let leader = server.leader().map(|(id, _)| id);
    let metrics = server.metrics();
    let servers = server
        .servers()
        .into_iter()
        .map(|(id, node, voter)| RaftServer {
            id: format!("{id:016x}"),
            node: node.name,
            address: node.raft_addr,
            leader: Some(id) == leader,
            voter,
            protocol_version: "3".into(),
        })
        .collect();
    let index = metrics.membership_config.log_id().map(|l| l.index).unwrap_or(0);
    json_response(&RaftConfiguration { servers, index }, params.pretty)
}

/// `DELETE /v1/operator/raft/peer?address=IP:PORT` or `?id=ID`.
pub async fn remove_peer(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let servers = state.server()?.servers();
    let found = match (params.get("address"), params.get("id")) {
        (Some(addr), _) if !addr.is_empty() => servers.iter().find(|(_, n, _)| n.raft_addr == addr),
        (_, Some(id)) if !id.is_empty() => servers
            .iter()
            .find(|(sid, n, _)| format!("{sid:016x}") == id || sid.to_string() == id || n.name == id),
        _ => {
            return Err(ApiError::BadRequest(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove"
                    .into(),
            ));
        }
    };
    let Some((id, _, _)) = found else {
        return Err(ApiError::BadRequest("address or id was not found in the Raft configuration".into()));
    };
    state.server()?.membership_via_leader(MembershipChange::Remove { id: *id }).await?;
    Ok(empty_ok())
}
