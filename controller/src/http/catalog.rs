//! `/v1/catalog/*`: registrations and the cluster-wide view of nodes and services.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use census_client::types::{CatalogDeregistration, CatalogNode, CatalogRegistration};

use super::authz::Authz;
use super::authz_records::{check_deregistration, check_registration};
use super::convert;
use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, block_on, blocking, json_response, query_response};
use super::registration::{self, Via};
use super::selection::Selection;
use super::{AppState, json_true};
use crate::acl::{Access, Resource};
use crate::catalog::{CheckRegistration, CheckStatus, Command, NodeSpec, Registration, Table, WatchKey};

/// A body's `Datacenter` other than this one: Consul would forward the write there.
fn check_datacenter(state: &AppState, dc: &str) -> ApiResult<()> {
    if dc.is_empty() || dc == state.info.datacenter {
        Ok(())
    } else {
        Err(ApiError::UnknownDatacenter(dc.to_string()))
    }
}

pub async fn register(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let reg: CatalogRegistration = decode_json(&body)?;
    check_datacenter(&state, &reg.datacenter)?;
    let reg = registration(&reg, &state.info.datacenter)?;
    state.catalog.read(|s| check_registration(&authz, s, &reg))?;
    state.write(Command::Register(reg)).await?;
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
            let (spec, _) = registration::service_registration(svc, Via::Catalog)?;
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
            spec: registration::recorded_spec(c.definition.as_ref()),
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
            locality: registration::locality(&reg.locality),
        },
        skip_node_update: reg.skip_node_update,
        service,
        checks,
        replace_service_checks: false,
    })
}

pub async fn deregister(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let dereg: CatalogDeregistration = decode_json(&body)?;
    check_datacenter(&state, &dereg.datacenter)?;
    if dereg.node.is_empty() {
        return Err(ApiError::BadRequest("Must provide node".into()));
    }
    state
        .catalog
        .read(|s| check_deregistration(&authz, s, &dereg.node, &dereg.service_id, &dereg.check_id))?;
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

pub async fn nodes(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    let select = Selection::new(&params, &state.info.node_name)?;
    blocking(&state, &params, WatchKey::Tables(vec![Table::Nodes]), |s| {
        let mut nodes: Vec<_> = s
            .nodes()
            .filter(|n| select.node_ok(n) && authz.allows(Resource::Node, &n.name, Access::Read))
            .map(convert::node)
            .collect();
        select.sort(&mut nodes, |n| &n.node);
        (s.tables_index(&[Table::Nodes]), nodes)
    })
    .await
}

/// Service name -> the tags of its instances. `?filter=` and `?node-meta=` select instances (as
/// rows of `/v1/catalog/service`) before their names and tags are gathered, as in Consul.
pub async fn services(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    if params.get("peer").is_some_and(|p| !p.is_empty()) {
        return Err(ApiError::Internal("listing service names imported from a peer is not supported".into()));
    }
    let select = Selection::new(&params, &state.info.node_name)?;
    let filter = params.filter.clone();
    let listed = params.without_filter();
    let tables = [Table::Services, Table::Nodes];
    let (index, services) = block_on(&state, &params, WatchKey::Tables(tables.to_vec()), |s| {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut failed = None;
        for svc in s.all_services() {
            if !authz.allows(Resource::Service, &svc.name, Access::Read) {
                continue;
            }
            let Some(node) = s.node(&svc.node).filter(|n| select.node_ok(n)) else { continue };
            if let Some(filter) = &filter {
                let row = serde_json::to_value(convert::catalog_service(node, svc)).unwrap_or_default();
                if let Err(e) = filter.check_selectors(&row) {
                    failed = Some(e);
                    break;
                }
                if !filter.matches(&row) {
                    continue;
                }
            }
            out.entry(svc.name.clone()).or_default().extend(svc.tags.iter().cloned());
        }
        let listing: BTreeMap<String, Vec<String>> =
            out.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect();
        (s.tables_index(&tables), failed.map_or(Ok(listing), Err))
    })
    .await?;
    let services = services.map_err(|e| ApiError::BadRequest(e.to_string()))?;
    query_response(&state, &listed, index, &services)
}

pub async fn service(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let select = Selection::new(&params, &state.info.node_name)?;
    blocking(&state, &params, WatchKey::Service(name.clone()), |s| {
        let mut rows: Vec<_> = s
            .instances(&name, &select.tags)
            .into_iter()
            .filter(|(n, _)| select.node_ok(n) && authz.allows(Resource::Node, &n.name, Access::Read))
            .map(|(n, svc)| convert::catalog_service(n, svc))
            .collect();
        select.sort(&mut rows, |r| &r.node);
        (s.service_name_index(&name), rows)
    })
    .await
}

pub async fn node(
    State(state): State<AppState>,
    authz: Authz,
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
                .filter(|svc| authz.allows(Resource::Service, &svc.name, Access::Read))
                .map(|svc| (svc.id.clone(), convert::agent_service(svc, &dc)))
                .collect::<BTreeMap<_, _>>(),
        });
        (s.tables_index(&[Table::Nodes, Table::Services]), found)
    })
    .await
}
