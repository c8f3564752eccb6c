//! Who this agent is: `/v1/agent/self`, `/v1/agent/version`, `/v1/agent/members`, and the
//! agent calls census answers as a Consul agent without ACLs or gossip encryption does.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use census_client::types::Member;
use serde_json::{Value, json};

use super::agent::{SERF_HEALTH, local_services};
use super::authz::Authz;
use super::error::{ApiError, ApiResult};
use super::query::{Params, json_response, listing_response};
use super::{AppState, empty_ok};
use crate::acl::{Access, Resource};
use crate::catalog::{CheckKind, Command, DocKind};
use crate::raft::MembershipChange;
use crate::version::{CENSUS_VERSION, CONSUL_API_VERSION, REVISION};

/// A coordinate at the origin, as a fresh Consul agent reports before its first measurement.
pub fn origin_coordinate() -> Value {
    json!({"Vec": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 1.5, "Adjustment": 0.0, "Height": 1.0e-5})
}

/// This node's coordinate: the last one written through `/v1/coordinate/update`, else the origin.
fn own_coordinate(state: &AppState) -> Value {
    state
        .catalog
        .read(|s| s.document(DocKind::Coordinate, &state.info.node_name).map(|d| d.body.clone()))
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .and_then(|entry| entry.get("Coord").cloned())
        .unwrap_or_else(origin_coordinate)
}

fn stats(state: &AppState) -> Value {
    let node = &state.info.node_name;
    let (checks, ttls, services) = state.catalog.read(|s| {
        let checks: Vec<_> = s.node_checks(node).into_iter().filter(|c| c.id != SERF_HEALTH).collect();
        let ttls = checks.iter().filter(|c| matches!(c.spec.kind, CheckKind::Ttl { .. })).count();
        (checks.len(), ttls, local_services(s, node).count())
    });
    let server = state.server.as_deref();
    let leader_addr = server.and_then(|s| s.leader()).map(|(_, n)| n.raft_addr).unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    json!({
        "agent": {
            "check_monitors": (checks - ttls).to_string(),
            "check_ttls": ttls.to_string(),
            "checks": checks.to_string(),
            "services": services.to_string(),
        },
        "build": {
            "prerelease": "",
            "revision": REVISION,
            "version": CONSUL_API_VERSION,
            "version_metadata": format!("census.{CENSUS_VERSION}"),
        },
        "consul": {
            "acl": "disabled",
            "bootstrap": "false",
            "known_datacenters": "1",
            "leader": server.is_some_and(|s| s.is_leader()).to_string(),
            "leader_addr": leader_addr,
            "server": server.is_some().to_string(),
        },
        "raft": server.map(|s| super::overview::raft_stats_section(&s.stats())),
        "runtime": {
            "arch": std::env::consts::ARCH,
            "cpu_count": cpus.to_string(),
            "max_procs": cpus.to_string(),
            "os": std::env::consts::OS,
            "version": format!("census {CENSUS_VERSION}"),
        },
    })
}

pub async fn self_info(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let member = state
        .members()
        .into_iter()
        .find(|m| m.name == state.info.node_name)
        .unwrap_or_else(|| Member { name: state.info.node_name.clone(), status: 1, ..Default::default() });
    let info = &state.info;
    let meta = state.self_node_spec().meta;
    let body = json!({
        "Config": {
            "Datacenter": info.datacenter,
            "PrimaryDatacenter": info.datacenter,
            "NodeName": info.node_name,
            "NodeID": info.node_id,
            "Revision": REVISION,
            "Server": state.server.is_some(),
            "Version": CONSUL_API_VERSION,
            "BuildDate": "1970-01-01T00:00:01Z",
        },
        "DebugConfig": {
            "Datacenter": info.datacenter,
            "PrimaryDatacenter": info.datacenter,
            "NodeName": info.node_name,
            "NodeID": info.node_id,
            "ServerMode": state.server.is_some(),
            "AdvertiseAddrLAN": info.advertise_addr,
            "EnableScriptChecks": info.enable_script_checks,
            "ACLsEnabled": false,
            "Version": CONSUL_API_VERSION,
            "Revision": REVISION,
        },
        "Coord": own_coordinate(&state),
        "Member": member,
        "Stats": stats(&state),
        "Meta": meta,
        // census runs no xDS server: no ports.
        "xDS": {"SupportedProxies": {"envoy": []}, "Port": -1, "Ports": {"Plaintext": -1, "TLS": -1}},
    });
    json_response(&body, params.pretty)
}

pub async fn version() -> ApiResult<Response> {
    json_response(
        &json!({
            "SHA": REVISION,
            "BuildDate": "1970-01-01T00:00:01Z",
            "HumanVersion": format!("{CONSUL_API_VERSION}+census.{CENSUS_VERSION}"),
            "FIPS": "",
        }),
        false,
    )
}

/// `?wan` lists the servers as the WAN pool names them (`node.dc`).
pub async fn members(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    let mut members = state.members();
    members.retain(|m| authz.allows(Resource::Node, &m.name, Access::Read));
    if params.switch("wan") {
        if params.get("segment").is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::BadRequest("Cannot provide a segment with wan=true".into()));
        }
        for m in &mut members {
            m.name = format!("{}.{}", m.name, state.info.datacenter);
            m.tags.remove("wan_join_port");
        }
    }
    listing_response(&members, &params)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct TokenBody {
    #[serde(rename = "Token")]
    token: String,
}

/// `PUT /v1/agent/token/:kind` (`default`, `agent`, `agent_recovery`, `replication`,
/// `config_file_service_registration`, and the older names): sets one of this agent's tokens,
/// kept in memory until the agent restarts, or on disk with `acl.enable_token_persistence`.
/// Needs `agent:write` on this agent's node.
pub async fn token(
    State(state): State<AppState>,
    authz: Authz,
    Path(kind): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    if !state.acl.enabled() {
        return Err(ApiError::AclDisabled);
    }
    authz.require(Resource::Agent, &state.info.node_name, Access::Write)?;
    let bytes = super::decode::read_body(&headers, body, super::decode::MAX_BODY, "Request body").await?;
    let body: TokenBody = super::decode::decode_json(&bytes)?;
    match state.acl.set_agent_token(&kind, body.token) {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::NotFound(format!("Token {kind:?} is unknown"))),
        Err(e) => return Err(ApiError::Internal(format!("Failed to persist tokens - {e}"))),
    }
    tracing::info!(target: "agent", "Updated agent's ACL token {kind:?}");
    Ok(super::empty_ok())
}

/// `PUT /v1/agent/force-leave/:node`: a node that is gone for good. Its services and checks leave
/// the catalog; a server also leaves the Raft configuration.
pub async fn force_leave(
    State(state): State<AppState>,
    Path(node): Path<String>,
    params: Params,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let name = if params.switch("wan") {
        node.strip_suffix(&format!(".{}", state.info.datacenter)).unwrap_or(&node).to_string()
    } else {
        node.clone()
    };
    if name == state.info.node_name {
        return Err(ApiError::BadRequest("A node cannot force-leave itself; use leave".into()));
    }
    let member = state.gossip.members().into_iter().find(|m| m.peer.name == name);
    let raft = state.server.as_ref().and_then(|s| s.servers().into_iter().find(|(_, n, _)| n.name == name));
    let known = match &state.server {
        Some(_) => state.catalog.read(|s| s.node(&name).is_some()),
        // A client agent's catalog holds only itself; the servers decide.
        None => member.is_some(),
    };
    if member.is_none() && raft.is_none() && !known {
        return Err(ApiError::Internal(format!("agent: No node found with name '{node}'")));
    }
    if let Some(m) = &member
        && m.status != crate::gossip::Status::Alive
    {
        // Every agent hears that the member left, as if it had said so itself.
        let word = crate::gossip::Item::Leave { name: name.clone(), bump: m.peer.bump };
        state.gossip.broadcast(word).await.map_err(|e| ApiError::Internal(e.to_string()))?;
        if params.flag("prune") {
            state.gossip.force_leave(&name, true).await.map_err(|e| ApiError::Internal(e.to_string()))?;
        }
    }
    if let (Some(server), Some((id, _, _))) = (&state.server, raft) {
        server.membership_via_leader(MembershipChange::Remove { id }).await?;
    }
    if known {
        // On a client agent the servers check the removal against the request's token (this
        // agent's default token when it named none), as a forwarded request is checked.
        let token = match super::authz::request_token(&headers, uri.query()) {
            named if !named.is_empty() => named,
            _ => state.acl.default_token(),
        };
        state.write_to_catalog(Command::DeregisterNode { node: name }, token).await?;
    }
    Ok(empty_ok())
}

/// `GET /v1/agent/monitor[?loglevel=][&logjson]`: the agent's log from now on, streamed until the
/// client goes away.
pub async fn monitor(params: Params) -> ApiResult<Response> {
    let word = params.get("loglevel").unwrap_or("info");
    let Some(level) = crate::agent::log_stream::parse_level(word) else {
        return Err(ApiError::BadRequest(format!("Unknown log level: {word}")));
    };
    let json = params.flag("logjson");
    let lines = crate::agent::log_stream::subscribe();
    let stream = futures::stream::unfold(lines, move |mut lines| async move {
        loop {
            match lines.recv().await {
                // tracing orders levels from ERROR (least verbose) up to TRACE.
                Ok(line) if line.level <= level => {
                    let text = if json { line.json() } else { line.text() };
                    return Some((Ok::<_, std::convert::Infallible>(text), lines));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok((
        StatusCode::OK,
        [("Content-Type", "text/plain; charset=utf-8")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
