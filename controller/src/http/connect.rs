//! Connect and gateway reads, answered from the catalog and the gateway config entries:
//! `/v1/catalog/connect/:service` and `/v1/health/connect/:service` (the service's sidecar
//! proxies, Connect-native instances and the terminating gateways linked to it),
//! `/v1/health/ingress/:service` (the ingress gateways routing to it) and
//! `/v1/catalog/gateway-services/:gateway`.

use axum::extract::{Path, State};
use axum::response::Response;
use census_client::types::ServiceEntry;
use serde_json::{Value, json};

use super::config_entry::entries_of;
use super::error::{ApiError, ApiResult};
use super::health::{passing, service_entry};
use super::query::{Params, blocking};
use super::selection::Selection;
use super::{AppState, convert};
use crate::catalog::query::InstanceHealth;
use crate::catalog::{CatalogState, CheckStatus, ServiceRecord, Table, WatchKey};

const TABLES: [Table; 4] = [Table::Nodes, Table::Services, Table::Checks, Table::ConfigEntries];

fn index(s: &CatalogState) -> u64 {
    s.tables_index(&TABLES)
}

/// The services a gateway config entry names: `(service, row)` pairs as gateway-services shows them.
fn gateway_rows(s: &CatalogState, gateway: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    for (name, entry, create_index, modify_index) in entries_of(s, "ingress-gateway") {
        if name != gateway {
            continue;
        }
        for listener in entry.get("Listeners").and_then(Value::as_array).into_iter().flatten() {
            for svc in listener.get("Services").and_then(Value::as_array).into_iter().flatten() {
                let service = svc.get("Name").and_then(Value::as_str).unwrap_or_default();
                let names: Vec<(String, bool)> = if service == "*" {
                    s.service_tags()
                        .into_keys()
                        .filter(|n| n != gateway && n != super::agent::SERVER_SERVICE)
                        .map(|n| (n, true))
                        .collect()
                } else {
                    vec![(service.to_string(), false)]
                };
                for (service, wildcard) in names {
                    let mut row = json!({
                        "Gateway": {"Name": name},
                        "Service": {"Name": service},
                        "GatewayKind": "ingress-gateway",
                        "Port": listener.get("Port").cloned().unwrap_or(Value::Null),
                        "Protocol": listener.get("Protocol").cloned().unwrap_or_else(|| "tcp".into()),
                        "CreateIndex": create_index,
                        "ModifyIndex": modify_index,
                    });
                    if let Some(hosts) = svc.get("Hosts").filter(|h| !h.is_null()) {
                        row["Hosts"] = hosts.clone();
                    }
                    if wildcard {
                        row["FromWildcard"] = true.into();
                    }
                    rows.push(row);
                }
            }
        }
    }
    for (name, entry, create_index, modify_index) in entries_of(s, "terminating-gateway") {
        if name != gateway {
            continue;
        }
        for svc in entry.get("Services").and_then(Value::as_array).into_iter().flatten() {
            let mut row = json!({
                "Gateway": {"Name": name},
                "Service": {"Name": svc.get("Name").cloned().unwrap_or(Value::Null)},
                "GatewayKind": "terminating-gateway",
                "CreateIndex": create_index,
                "ModifyIndex": modify_index,
            });
            for field in ["CAFile", "CertFile", "KeyFile", "SNI"] {
                if let Some(v) = svc.get(field).filter(|v| v.as_str().is_some_and(|t| !t.is_empty())) {
                    row[field] = v.clone();
                }
            }
            rows.push(row);
        }
    }
    rows
}

/// Whether gateway `gateway` (of a config entry of `kind`) routes to `service`.
fn gateway_serves(s: &CatalogState, kind: &str, gateway: &str, service: &str) -> bool {
    gateway_rows(s, gateway)
        .iter()
        .any(|row| row["GatewayKind"] == kind && row["Service"]["Name"].as_str() == Some(service))
}

/// The instances that carry Connect traffic for `service`.
fn connect_instances<'a>(s: &'a CatalogState, service: &str) -> Vec<&'a ServiceRecord> {
    s.all_services()
        .filter(|svc| match svc.kind.as_str() {
            "connect-proxy" => convert::proxy(svc).destination_service_name == service,
            "terminating-gateway" => gateway_serves(s, "terminating-gateway", &svc.name, service),
            "" => svc.connect_native && svc.name == service,
            _ => false,
        })
        .collect()
}

fn health_of(s: &CatalogState, svc: &ServiceRecord) -> Option<InstanceHealth> {
    Some(InstanceHealth {
        node: s.node(&svc.node)?.clone(),
        service: svc.clone(),
        checks: s.checks_for(svc).into_iter().cloned().collect(),
    })
}

fn entries(
    s: &CatalogState,
    instances: Vec<&ServiceRecord>,
    select: &Selection,
    passing_only: bool,
) -> Vec<ServiceEntry> {
    let mut out: Vec<ServiceEntry> = instances
        .into_iter()
        .filter_map(|svc| health_of(s, svc))
        .filter(|h| select.node_ok(&h.node))
        .filter(|h| !passing_only || h.checks.iter().all(|c| c.status == CheckStatus::Passing))
        .map(|h| service_entry(&h))
        .collect();
    select.sort(&mut out, |e| &e.node.node);
    out
}

pub async fn catalog_connect(
    State(state): State<AppState>,
    Path(service): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let select = Selection::new(&params, &state.info.node_name)?;
    blocking(&state, &params, WatchKey::Tables(TABLES.to_vec()), |s| {
        let mut rows: Vec<_> = connect_instances(s, &service)
            .into_iter()
            .filter_map(|svc| Some((s.node(&svc.node)?, svc)))
            .filter(|(n, _)| select.node_ok(n))
            .map(|(n, svc)| convert::catalog_service(n, svc))
            .collect();
        select.sort(&mut rows, |r| &r.node);
        (index(s), rows)
    })
    .await
}

pub async fn health_connect(
    State(state): State<AppState>,
    Path(service): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let select = Selection::new(&params, &state.info.node_name)?;
    let passing_only = passing(&params)?;
    blocking(&state, &params, WatchKey::Tables(TABLES.to_vec()), |s| {
        (index(s), entries(s, connect_instances(s, &service), &select, passing_only))
    })
    .await
}

pub async fn health_ingress(
    State(state): State<AppState>,
    Path(service): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let select = Selection::new(&params, &state.info.node_name)?;
    let passing_only = passing(&params)?;
    blocking(&state, &params, WatchKey::Tables(TABLES.to_vec()), |s| {
        let gateways: Vec<&ServiceRecord> = s
            .all_services()
            .filter(|svc| {
                svc.kind == "ingress-gateway" && gateway_serves(s, "ingress-gateway", &svc.name, &service)
            })
            .collect();
        (index(s), entries(s, gateways, &select, passing_only))
    })
    .await
}

pub async fn gateway_services(
    State(state): State<AppState>,
    Path(gateway): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    if gateway.is_empty() {
        return Err(ApiError::BadRequest("Missing gateway name".into()));
    }
    blocking(&state, &params, WatchKey::Tables(TABLES.to_vec()), |s| (index(s), gateway_rows(s, &gateway)))
        .await
}
