//! `/v1/catalog/*` and `/v1/health/*`: the cluster-wide view.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use census_client::types::{CatalogDeregistration, CatalogNode, CatalogRegistration, ServiceEntry};

use super::convert;
use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, blocking, json_response};
use super::{AppState, json_true};
use crate::catalog::{
    CheckRegistration, CheckSpec, CheckStatus, Command, NodeSpec, Registration, Table, WatchKey,
};

pub async fn register(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let reg: CatalogRegistration = decode_json(&body)?;
    let cmd = Command::Register(registration(&reg, &state.info.datacenter)?);
    state.write(cmd).await?;
    Ok(json_true())
}

/// A `/v1/catalog/register` body (also a txn's node, service and check `set`) as the catalog's
/// registration; refused as Consul refuses it.
pub fn registration(reg: &CatalogRegistration, datacenter: &str) -> ApiResult<Registration> {
    if reg.node.is_empty() {
        return Err(ApiError::BadRequest("Must provide node".into()));
    }
    let service = match &reg.service {
        Some(svc) => {
            let (spec, _) = convert::service_registration(svc, false)?;
            Some(spec)
        }
        None => None,
    };
    let mut checks = Vec::new();
    for c in reg.check.iter().chain(reg.checks.iter()) {
        let status = match c.status.as_str() {
            "" => CheckStatus::Critical,
            s => CheckStatus::parse(s)
                .ok_or_else(|| ApiError::BadRequest(format!("Invalid check status: {s:?}")))?,
        };
        let id = if c.check_id.is_empty() { c.name.clone() } else { c.check_id.clone() };
        checks.push(CheckRegistration {
            id,
            name: c.name.clone(),
            status: Some(status),
            notes: c.notes.clone(),
            output: c.output.clone(),
            service_id: c.service_id.clone(),
            spec: CheckSpec::default(),
        });
    }
    Ok(Registration {
        node: NodeSpec {
            name: reg.node.clone(),
            id: reg.id.clone(),
            address: reg.address.clone(),
            datacenter: datacenter.to_string(),
            tagged_addresses: reg.tagged_addresses.clone(),
            meta: reg.node_meta.clone(),
        },
        skip_node_update: reg.skip_node_update,
        service,
        checks,
        replace_service_checks: false,
    })
}

pub async fn deregister(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let dereg: CatalogDeregistration = decode_json(&body)?;
    if dereg.node.is_empty() {
        return Err(ApiError::BadRequest("Must provide node".into()));
    }
    let cmd = if !dereg.service_id.is_empty() {
        Command::DeregisterService { node: dereg.node, service_id: dereg.service_id }
    } else if !dereg.check_id.is_empty() {
        Command::DeregisterCheck { node: dereg.node, check_id: dereg.check_id }
    } else {
        Command::DeregisterNode { node: dereg.node }
    };
    state.write(cmd).await?;
    Ok(json_true())
}

pub async fn datacenters(State(state): State<AppState>) -> ApiResult<Response> {
    json_response(&vec![state.info.datacenter.clone()], false)
}

pub async fn nodes(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    blocking(&state, &params, WatchKey::Tables(vec![Table::Nodes]), |s| {
        (s.tables_index(&[Table::Nodes]), s.nodes().map(convert::node).collect::<Vec<_>>())
    })
    .await
}

pub async fn services(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    blocking(&state, &params, WatchKey::Tables(vec![Table::Services]), |s| {
        (s.tables_index(&[Table::Services]), s.service_tags())
    })
    .await
}

pub async fn service(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let tags = params.tags();
    blocking(&state, &params, WatchKey::Service(name.clone()), |s| {
        let rows: Vec<_> =
            s.instances(&name, &tags).into_iter().map(|(n, svc)| convert::catalog_service(n, svc)).collect();
        (s.service_name_index(&name), rows)
    })
    .await
}

pub async fn node(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let dc = state.info.datacenter.clone();
    blocking(&state, &params, WatchKey::Tables(vec![Table::Nodes, Table::Services]), |s| {
        let found = s.node(&name).map(|n| CatalogNode {
            node: convert::node(n),
            services: s
                .node_services(&name)
                .into_iter()
                .map(|svc| (svc.id.clone(), convert::agent_service(svc, &dc)))
                .collect::<BTreeMap<_, _>>(),
        });
        (s.tables_index(&[Table::Nodes, Table::Services]), found)
    })
    .await
}

pub async fn health_node(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    blocking(&state, &params, WatchKey::Tables(vec![Table::Checks]), |s| {
        let checks: Vec<_> = s.node_checks(&name).into_iter().map(convert::health_check).collect();
        (s.tables_index(&[Table::Checks]), checks)
    })
    .await
}

pub async fn health_checks(
    State(state): State<AppState>,
    Path(service): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    blocking(&state, &params, WatchKey::Service(service.clone()), |s| {
        let checks: Vec<_> = s.checks_of_service(&service).into_iter().map(convert::health_check).collect();
        (s.service_name_index(&service), checks)
    })
    .await
}

pub async fn health_service(
    State(state): State<AppState>,
    Path(service): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let tags = params.tags();
    let passing = params.switch("passing");
    blocking(&state, &params, WatchKey::Service(service.clone()), |s| {
        let entries: Vec<ServiceEntry> = s
            .health_of(&service, &tags, passing)
            .into_iter()
            .map(|h| ServiceEntry {
                node: convert::node(&h.node),
                service: convert::health_service(&h.service),
                checks: h.checks.iter().map(convert::health_check).collect(),
            })
            .collect();
        (s.service_name_index(&service), entries)
    })
    .await
}

pub async fn health_state(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let filter = match wanted.as_str() {
        "any" => None,
        other => Some(CheckStatus::parse(other).ok_or_else(|| {
            ApiError::BadRequest(format!("Invalid state: {other:?} (any, passing, warning, critical)"))
        })?),
    };
    blocking(&state, &params, WatchKey::Tables(vec![Table::Checks]), |s| {
        let checks: Vec<_> = s.checks_in_state(filter).into_iter().map(convert::health_check).collect();
        (s.tables_index(&[Table::Checks]), checks)
    })
    .await
}
