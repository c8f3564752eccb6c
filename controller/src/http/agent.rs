//! `/v1/agent/*`: this agent's services, checks and membership.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use census_client::types::{AgentServiceRegistration, CheckDefinition};

use super::authz::Authz;
use super::authz_records::{check_deregistration, check_services_of_registration, may_read_check};
use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, listing_response};
use super::registration::{self, Via};
use super::{AppState, convert, empty_ok, sidecar};
use crate::acl::{Access, Resource};
use crate::catalog::{
    CatalogState, CheckKind, CheckStatus, Command, CommandResult, Registration, ServiceRecord,
};

/// What the agent's own endpoints leave out: the records a Consul server keeps for itself (its
/// `consul` service and `serfHealth` check are the catalog's, not registered on the agent).
pub use crate::agent::{AGENT_CHECK as SERF_HEALTH, SERVER_SERVICE};

/// The registrations an agent service registration makes: the service, and its sidecar proxy
/// when it asks for one (`Connect.SidecarService`).
pub fn agent_registrations(
    state: &AppState,
    reg: &AgentServiceRegistration,
    replace_checks: bool,
) -> ApiResult<Vec<Registration>> {
    let node = state.info.node_name.clone();
    let parent_id = if reg.id.is_empty() { reg.name.clone() } else { reg.id.clone() };
    let sidecar_id = sidecar::sidecar_id(&parent_id);
    let (used_ports, current_port) = state.catalog.read(|s| {
        let used: BTreeSet<u16> = s
            .node_services(&node)
            .into_iter()
            .filter(|svc| svc.id != sidecar_id)
            .map(|svc| svc.port)
            .collect();
        (used, s.service(&node, &sidecar_id).map(|svc| svc.port))
    });
    let (parent, sidecar) = sidecar::expand(reg.clone(), &used_ports, current_port)?;
    let via = Via::Agent { script_checks: state.info.enable_script_checks };
    let mut registrations = Vec::new();
    for reg in std::iter::once(parent).chain(sidecar) {
        let (service, checks) = registration::service_registration(&reg, via)?;
        registrations.push(Registration {
            node: state.self_node_spec(),
            skip_node_update: false,
            service: Some(service),
            checks,
            replace_service_checks: replace_checks,
        });
    }
    Ok(registrations)
}

/// Writes registrations together; the first the catalog refuses is the answer. Logs what it
/// synced as Consul's agent does (`agent: Synced service 'web'`).
pub async fn write_registrations(state: &AppState, registrations: Vec<Registration>) -> ApiResult<()> {
    let ids: Vec<String> =
        registrations.iter().filter_map(|r| r.service.as_ref().map(|s| s.id.clone())).collect();
    let commands = registrations.into_iter().map(Command::Register).collect();
    if let CommandResult::Batch(results) = state.write(Command::Batch(commands)).await?
        && let Some(CommandResult::Rejected(reason)) =
            results.into_iter().find(|r| matches!(r, CommandResult::Rejected(_)))
    {
        return Err(ApiError::BadRequest(reason));
    }
    for id in ids {
        tracing::info!(target: "agent", "Synced service '{id}'");
    }
    Ok(())
}

/// On a client agent, remembers the token that registered service `id` (anti-entropy writes
/// the service to the catalog with it, as Consul's agent does).
fn remember_token(state: &AppState, id: &str, headers: &HeaderMap, uri: &Uri) {
    if state.servers.is_some() {
        state.acl.registrations.set(id, &super::authz::request_token(headers, uri.query()));
    }
}

pub async fn service_register(
    State(state): State<AppState>,
    authz: Authz,
    params: Params,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let reg: AgentServiceRegistration = decode_json(&body)?;
    let registrations = agent_registrations(&state, &reg, params.flag("replace-existing-checks"))?;
    // The agent writes its own node with its own token: the request needs the services only,
    // vetted as the catalog vets them (a reused ID, existing checks, a proxy's destination).
    for reg in &registrations {
        state.catalog.read(|s| check_services_of_registration(&authz, s, reg))?;
    }
    // Recorded before the write, so that the sync it sets off carries it; put back if refused.
    let before: Vec<(String, String)> = registrations
        .iter()
        .filter_map(|r| r.service.as_ref())
        .map(|svc| (svc.id.clone(), state.acl.registrations.of(&svc.id)))
        .collect();
    for (id, _) in &before {
        remember_token(&state, id, &headers, &uri);
    }
    if let Err(e) = write_registrations(&state, registrations).await {
        for (id, token) in &before {
            state.acl.registrations.set(id, token);
        }
        return Err(e);
    }
    Ok(empty_ok())
}

/// The sidecar this agent registered for a service, if any.
fn sidecar_of(s: &CatalogState, node: &str, id: &str) -> Option<String> {
    let sidecar = s.service(node, &sidecar::sidecar_id(id))?;
    (convert::proxy(sidecar).destination_service_id == id).then(|| sidecar.id.clone())
}

pub async fn service_deregister(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let node = state.info.node_name.clone();
    let (name, sidecar) = state
        .catalog
        .read(|s| (s.service(&node, &id).map(|svc| svc.name.clone()), sidecar_of(s, &node, &id)));
    let Some(name) = name else {
        return Err(ApiError::NotFound(format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        )));
    };
    authz.require(Resource::Service, &name, Access::Write)?;
    let mut commands = vec![Command::DeregisterService { node: node.clone(), service_id: id }];
    commands.extend(sidecar.map(|service_id| Command::DeregisterService { node, service_id }));
    state.write(Command::Batch(commands.clone())).await?;
    for command in &commands {
        if let Command::DeregisterService { service_id, .. } = command {
            state.acl.registrations.forget(service_id);
        }
    }
    Ok(empty_ok())
}

/// The services registered on this agent.
pub fn local_services<'a>(s: &'a CatalogState, node: &str) -> impl Iterator<Item = &'a ServiceRecord> + 'a {
    s.node_services(node).into_iter().filter(|svc| svc.id != SERVER_SERVICE)
}

pub async fn services(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    let dc = state.info.datacenter.clone();
    let map = state.catalog.read(|s| {
        local_services(s, &state.info.node_name)
            .filter(|svc| authz.allows(Resource::Service, &svc.name, Access::Read))
            .map(|svc| (svc.id.clone(), convert::local_service(svc, &dc)))
            .collect::<BTreeMap<_, _>>()
    });
    listing_response(&map, &params)
}

pub async fn checks(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    let map = state.catalog.read(|s| {
        s.node_checks(&state.info.node_name)
            .into_iter()
            .filter(|c| c.id != SERF_HEALTH && may_read_check(&authz, c))
            .map(|c| (c.id.clone(), convert::health_check(c)))
            .collect::<BTreeMap<_, _>>()
    });
    listing_response(&map, &params)
}

pub async fn check_register(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let def: CheckDefinition = decode_json(&body)?;
    if def.name.is_empty() {
        return Err(ApiError::BadRequest("Missing check name".into()));
    }
    let node = &state.info.node_name;
    let service_exists = state.catalog.read(|s| s.service(node, &def.service_id).is_some());
    if !def.service_id.is_empty() && !service_exists {
        return Err(ApiError::NotFound(format!("ServiceID {:?} does not exist", def.service_id)));
    }
    let check = registration::check_registration(
        &def,
        &def.name,
        &def.name,
        &def.service_id,
        state.info.enable_script_checks,
    )?;
    let reg = Registration { node: state.self_node_spec(), checks: vec![check], ..Default::default() };
    // `service:write` on its service (`node:write` for a node check), and on whatever an existing
    // check of this ID belonged to.
    state.catalog.read(|s| check_services_of_registration(&authz, s, &reg))?;
    state.write(Command::Register(reg)).await?;
    Ok(empty_ok())
}

pub async fn check_deregister(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let node = state.info.node_name.clone();
    if state.catalog.read(|s| s.check(&node, &id).is_none()) {
        return Err(ApiError::NotFound(format!("Unknown check ID {id:?}")));
    }
    state.catalog.read(|s| check_deregistration(&authz, s, &node, "", &id))?;
    state.write(Command::DeregisterCheck { node, check_id: id }).await?;
    Ok(empty_ok())
}

/// Sets a TTL check's status (pass/warn/fail/update) and restarts its TTL clock.
async fn set_ttl_status(
    state: &AppState,
    authz: &Authz,
    id: &str,
    status: CheckStatus,
    output: String,
) -> ApiResult<Response> {
    let node = state.info.node_name.clone();
    if state.catalog.read(|s| s.check(&node, id).is_some()) {
        state.catalog.read(|s| check_deregistration(authz, s, &node, "", id))?;
    }
    let kind = state.catalog.read(|s| s.check(&node, id).map(|c| c.spec.kind.clone()));
    // Consul answers the same for an unknown check and for one without a TTL.
    if !matches!(kind, Some(CheckKind::Ttl { .. })) {
        return Err(ApiError::Internal(format!("CheckID {id:?} does not have associated TTL")));
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
    authz: Authz,
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
    set_ttl_status(&state, &authz, &id, status, note).await
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
    authz: Authz,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let update: CheckUpdate = decode_json(&body)?;
    let status = CheckStatus::parse(&update.status)
        .ok_or_else(|| ApiError::BadRequest(format!("Invalid check status: {:?}", update.status)))?;
    set_ttl_status(&state, &authz, &id, status, update.output).await
}

pub async fn join(State(state): State<AppState>, Path(addr): Path<String>) -> ApiResult<Response> {
    let addr = crate::agent::config::with_default_port(&addr, crate::agent::config::DEFAULT_SERVER_PORT);
    let failed = |e: String| ApiError::Internal(format!("Error joining address '{addr}': {e}"));
    match &state.server {
        Some(server) => {
            state.discovery.greet(server, &addr).await.map_err(|e| failed(e.to_string()))?;
            crate::agent::join::join_one(&state.gossip, &server.transport, None, &addr)
                .await
                .map_err(failed)?;
        }
        None => {
            let pool = state.servers.as_deref().ok_or_else(|| failed("census: no server pool".into()))?;
            crate::agent::join::join_one(&state.gossip, pool.transport(), Some(pool), &addr)
                .await
                .map_err(failed)?;
        }
    }
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

/// `PUT /v1/agent/leave`: answers once the agent has left (its node is out of the catalog), as
/// Consul's does, then the agent stops.
pub async fn leave(State(state): State<AppState>) -> ApiResult<Response> {
    crate::agent::shutdown::leave_within_grace(&state).await;
    state.leave.notify_one();
    Ok(empty_ok())
}
