//! `/v1/health/*`: instances with their checks, and checks by node, service and state.

use axum::extract::{Path, State};
use axum::response::Response;
use census_client::types::ServiceEntry;

use super::authz::Authz;
use super::authz_records::may_read_check;
use super::error::{ApiError, ApiResult};
use super::query::{Params, blocking};
use super::selection::Selection;
use super::{AppState, convert};
use crate::acl::{Access, Resource};
use crate::catalog::query::InstanceHealth;
use crate::catalog::{CheckStatus, Table, WatchKey};

pub fn service_entry(h: &InstanceHealth) -> ServiceEntry {
    ServiceEntry {
        node: convert::node(&h.node),
        service: convert::health_service(&h.service),
        checks: h.checks.iter().map(convert::health_check).collect(),
    }
}

/// `?passing` (a switch, or `true`/`false`); anything else is refused as Consul refuses it.
pub fn passing(params: &Params) -> ApiResult<bool> {
    match params.get("passing") {
        None | Some("" | "true" | "1") => Ok(params.flag("passing")),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(ApiError::BadRequest("Invalid value for ?passing".into())),
    }
}

pub async fn health_node(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    blocking(&state, &params, WatchKey::Tables(vec![Table::Checks]), |s| {
        let checks: Vec<_> = s
            .node_checks(&name)
            .into_iter()
            .filter(|c| may_read_check(&authz, c))
            .map(convert::health_check)
            .collect();
        (s.tables_index(&[Table::Checks]), checks)
    })
    .await
}

pub async fn health_checks(
    State(state): State<AppState>,
    authz: Authz,
    Path(service): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let select = Selection::new(&params, &state.info.node_name)?;
    blocking(&state, &params, WatchKey::Service(service.clone()), |s| {
        let mut checks: Vec<_> = s
            .checks_of_service(&service)
            .into_iter()
            .filter(|c| s.node(&c.node).is_some_and(|n| select.node_ok(n)) && may_read_check(&authz, c))
            .map(convert::health_check)
            .collect();
        select.sort(&mut checks, |c| &c.node);
        (s.service_name_index(&service), checks)
    })
    .await
}

pub async fn health_service(
    State(state): State<AppState>,
    authz: Authz,
    Path(service): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let select = Selection::new(&params, &state.info.node_name)?;
    let passing = passing(&params)?;
    blocking(&state, &params, WatchKey::Service(service.clone()), |s| {
        let mut entries: Vec<ServiceEntry> = s
            .health_of(&service, &select.tags, passing)
            .iter()
            .filter(|h| select.node_ok(&h.node) && authz.allows(Resource::Node, &h.node.name, Access::Read))
            .map(service_entry)
            .collect();
        select.sort(&mut entries, |e| &e.node.node);
        (s.service_name_index(&service), entries)
    })
    .await
}

pub async fn health_state(
    State(state): State<AppState>,
    authz: Authz,
    Path(wanted): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let filter = match wanted.as_str() {
        "any" => None,
        other => Some(CheckStatus::parse(other).ok_or_else(|| {
            ApiError::BadRequest(format!("Invalid state: {other:?} (any, passing, warning, critical)"))
        })?),
    };
    let select = Selection::new(&params, &state.info.node_name)?;
    blocking(&state, &params, WatchKey::Tables(vec![Table::Checks]), |s| {
        let mut checks: Vec<_> = s
            .checks_in_state(filter)
            .into_iter()
            .filter(|c| s.node(&c.node).is_some_and(|n| select.node_ok(n)) && may_read_check(&authz, c))
            .map(convert::health_check)
            .collect();
        select.sort(&mut checks, |c| &c.node);
        (s.tables_index(&[Table::Checks]), checks)
    })
    .await
}
