//! Maintenance mode, as Consul's: `PUT /v1/agent/maintenance` (the node) and
//! `PUT /v1/agent/service/maintenance/:id` add a critical check (`_node_maintenance`,
//! `_service_maintenance:ID`) whose notes carry the reason, so the node's or the instance's
//! health answers, DNS and `?passing` leave it out until maintenance is disabled.

use axum::extract::{Path, State};
use axum::response::Response;

use super::authz::Authz;
use super::error::{ApiError, ApiResult};
use super::query::Params;
use super::{AppState, empty_ok};
use crate::acl::{Access, Resource};
use crate::catalog::{CheckRegistration, CheckSpec, CheckStatus, Command, Registration};

pub const NODE_CHECK: &str = "_node_maintenance";
pub const SERVICE_CHECK_PREFIX: &str = "_service_maintenance:";
const DEFAULT_REASON: &str =
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.";

fn enable(params: &Params) -> ApiResult<bool> {
    match params.get("enable") {
        None | Some("") => Err(ApiError::BadRequest("Missing value for enable".into())),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(ApiError::BadRequest(format!("Invalid value for enable: {other:?}"))),
    }
}

async fn set(
    state: &AppState,
    on: bool,
    check_id: String,
    name: &str,
    service_id: &str,
    reason: Option<&str>,
) -> ApiResult<Response> {
    let node = state.info.node_name.clone();
    if !on {
        if state.catalog.read(|s| s.check(&node, &check_id).is_some()) {
            state.write(Command::DeregisterCheck { node, check_id }).await?;
        }
        return Ok(empty_ok());
    }
    let check = CheckRegistration {
        id: check_id,
        name: name.to_string(),
        status: Some(CheckStatus::Critical),
        notes: reason
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| DEFAULT_REASON.to_string()),
        output: String::new(),
        service_id: service_id.to_string(),
        spec: CheckSpec::default(),
    };
    let cmd = Command::Register(Registration {
        node: state.self_node_spec(),
        skip_node_update: true,
        checks: vec![check],
        ..Default::default()
    });
    state.write(cmd).await?;
    Ok(empty_ok())
}

pub async fn node(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let on = enable(&params)?;
    set(&state, on, NODE_CHECK.to_string(), "Node Maintenance Mode", "", params.get("reason")).await
}

pub async fn service(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let on = enable(&params)?;
    let node = state.info.node_name.clone();
    let Some(name) = state.catalog.read(|s| s.service(&node, &id).map(|svc| svc.name.clone())) else {
        return Err(ApiError::NotFound(format!("Unknown service ID {id:?}")));
    };
    authz.require(Resource::Service, &name, Access::Write)?;
    let check_id = format!("{SERVICE_CHECK_PREFIX}{id}");
    set(&state, on, check_id, "Service Maintenance Mode", &id, params.get("reason")).await
}
