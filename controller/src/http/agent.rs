//! `/v1/agent/*`: this agent's services, checks and membership.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use census_client::types::{AgentConfig, AgentSelf, AgentServiceRegistration, CheckDefinition, Member};

use super::convert;
use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json_response, listing_response};
use super::{AppState, empty_ok};
use crate::catalog::{CheckKind, CheckStatus, Command, Registration};

pub async fn service_register(
    State(state): State<AppState>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let reg: AgentServiceRegistration = decode_json(&body)?;
    let (service, checks) = convert::service_registration(&reg, state.info.enable_script_checks)?;
    let cmd = Command::Register(Registration {
        node: state.self_node_spec(),
        skip_node_update: false,
        service: Some(service),
        checks,
        replace_service_checks: params.flag("replace-existing-checks"),
    });
    state.write(cmd).await?;
    Ok(empty_ok())
}

pub async fn service_deregister(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let node = state.info.node_name.clone();
    if state.catalog.read(|s| s.service(&node, &id).is_none()) {
        return Err(ApiError::NotFound(format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        )));
    }
    state.write(Command::DeregisterService { node, service_id: id }).await?;
    Ok(empty_ok())
}

pub async fn services(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let dc = state.info.datacenter.clone();
    let map = state.catalog.read(|s| {
        s.node_services(&state.info.node_name)
            .into_iter()
            .map(|svc| (svc.id.clone(), convert::agent_service(svc, &dc)))
            .collect::<BTreeMap<_, _>>()
    });
    listing_response(&map, &params)
}

pub async fn service(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let dc = state.info.datacenter.clone();
    let svc = state
        .catalog
        .read(|s| s.service(&state.info.node_name, &id).map(|svc| convert::agent_service(svc, &dc)));
    match svc {
        Some(svc) => json_response(&svc, params.pretty),
        None => Err(ApiError::NotFound(format!("unknown service ID: {id}"))),
    }
}

pub async fn checks(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let map = state.catalog.read(|s| {
        s.node_checks(&state.info.node_name)
            .into_iter()
            .map(|c| (c.id.clone(), convert::health_check(c)))
            .collect::<BTreeMap<_, _>>()
    });
    listing_response(&map, &params)
}

pub async fn check_register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let def: CheckDefinition = decode_json(&body)?;
    if def.name.is_empty() {
        return Err(ApiError::BadRequest("Missing check name".into()));
    }
    let check = convert::check_registration(
        &def,
        &def.name,
        &def.name,
        &def.service_id,
        state.info.enable_script_checks,
    )?;
    let cmd = Command::Register(Registration {
        node: state.self_node_spec(),
        checks: vec![check],
        ..Default::default()
    });
    state.write(cmd).await?;
    Ok(empty_ok())
}

pub async fn check_deregister(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let node = state.info.node_name.clone();
    if state.catalog.read(|s| s.check(&node, &id).is_none()) {
        return Err(ApiError::NotFound(format!("Unknown check ID {id:?}")));
    }
    state.write(Command::DeregisterCheck { node, check_id: id }).await?;
    Ok(empty_ok())
}

/// Sets a TTL check's status (pass/warn/fail/update) and restarts its TTL clock.
async fn set_ttl_status(
    state: &AppState,
    id: &str,
    status: CheckStatus,
    output: String,
) -> ApiResult<Response> {
    let node = state.info.node_name.clone();
    let kind = state.catalog.read(|s| s.check(&node, id).map(|c| c.spec.kind.clone()));
    match kind {
        None => return Err(ApiError::NotFound(format!("Unknown check ID {id:?}"))),
        Some(CheckKind::Ttl { .. }) => {}
        Some(_) => return Err(ApiError::BadRequest(format!("CheckID {id:?} does not have associated TTL"))),
    }
    let max = state.catalog.read(|s| s.check(&node, id).map(|c| c.spec.output_max_size)).unwrap_or(4096);
    let output = crate::agent::checks::truncate_output(output, max as usize);
    state.checks.ttl_touched(id);
    // A heartbeat that changes nothing restarts the clock but costs no Raft entry.
    let unchanged =
        state.catalog.read(|s| s.check(&node, id).is_some_and(|c| c.status == status && c.output == output));
    if unchanged {
        return Ok(empty_ok());
    }
    state.write(Command::UpdateCheck { node, check_id: id.to_string(), status, output }).await?;
    Ok(empty_ok())
}

pub async fn check_ttl(
    State(state): State<AppState>,
    Path((verb, id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    let status = match verb.as_str() {
        "pass" => CheckStatus::Passing,
        "warn" => CheckStatus::Warning,
        "fail" => CheckStatus::Critical,
        other => return Err(ApiError::NotFound(format!("unknown check verb {other:?}"))),
    };
    let note = params.get("note").unwrap_or_default().to_string();
    set_ttl_status(&state, &id, status, note).await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CheckUpdate {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Output")]
    output: String,
}

pub async fn check_update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let update: CheckUpdate = decode_json(&body)?;
    let status = CheckStatus::parse(&update.status)
        .ok_or_else(|| ApiError::BadRequest(format!("Invalid check status: {:?}", update.status)))?;
    set_ttl_status(&state, &id, status, update.output).await
}

pub async fn members(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    listing_response(&state.members(), &params)
}

pub async fn self_info(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let member = state
        .members()
        .into_iter()
        .find(|m| m.name == state.info.node_name)
        .unwrap_or_else(|| Member { name: state.info.node_name.clone(), status: 1, ..Default::default() });
    let info = AgentSelf {
        config: AgentConfig {
            datacenter: state.info.datacenter.clone(),
            node_name: state.info.node_name.clone(),
            node_id: state.info.node_id.clone(),
            server: true,
            revision: String::new(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        member,
        meta: BTreeMap::new(),
        stats: [("raft".to_string(), super::overview::raft_stats_section(&state.cluster.stats()))].into(),
    };
    json_response(&info, params.pretty)
}

pub async fn join(State(state): State<AppState>, Path(addr): Path<String>) -> ApiResult<Response> {
    let addr = crate::agent::config::with_default_port(&addr, crate::agent::config::DEFAULT_SERVER_PORT);
    state
        .discovery
        .greet(&state.cluster, &addr)
        .await
        .map_err(|e| ApiError::Internal(format!("Error joining address '{addr}': {e}")))?;
    Ok(empty_ok())
}

/// `PUT /v1/agent/reload`: answers once the definition files are applied again.
pub async fn reload(State(state): State<AppState>) -> ApiResult<Response> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let gone = || ApiError::Internal("the agent is shutting down".into());
    state.reload.send(reply).await.map_err(|_| gone())?;
    match answer.await.map_err(|_| gone())? {
        Ok(_) => Ok(empty_ok()),
        Err(e) => Err(ApiError::Internal(format!("Failed reloading: {e}"))),
    }
}

pub async fn leave(State(state): State<AppState>) -> ApiResult<Response> {
    state.leave.notify_one();
    Ok(empty_ok())
}
