//! One service of this agent: `/v1/agent/service/:id` (blocking on `?hash=`), and its health as
//! `/v1/agent/health/service/id/:id` and `/name/:name` report it (HTTP 200 passing, 429
//! warning, 503 critical or in maintenance), as Consul's agent does.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use census_client::types::{AgentService, HealthCheck};
use serde::Serialize;

use super::agent::local_services;
use super::authz::Authz;
use super::error::{ApiError, ApiResult};
use super::query::{Params, json_body};
use super::{AppState, convert, maintenance};
use crate::acl::{Access, Resource};
use crate::catalog::{CatalogState, Table, WatchKey};

/// `GET /v1/agent/service/:id`; with `?hash=H` it waits until the service's `ContentHash` is no
/// longer `H` (or `wait` runs out), as Consul's hash-based blocking queries do.
pub async fn service(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let dc = state.info.datacenter.clone();
    let node = state.info.node_name.clone();
    if let Some(name) = state.catalog.read(|s| s.service(&node, &id).map(|svc| svc.name.clone())) {
        authz.require(Resource::Service, &name, Access::Read)?;
    }
    // Only this endpoint shows a `ContentHash`, which changes whenever anything else shown does.
    let read = |s: &CatalogState| {
        s.service(&node, &id).map(|svc| {
            let svc = convert::local_service(svc, &dc);
            AgentService { content_hash: convert::content_hash(&svc), ..svc }
        })
    };
    let wanted_hash = params.get("hash").filter(|h| !h.is_empty()).map(str::to_string);
    let deadline = tokio::time::Instant::now() + params.wait;
    let svc = loop {
        let mut changed = state.catalog.hub().subscribe(&WatchKey::Tables(vec![Table::Services]));
        let svc = state.catalog.read(read);
        let same = match (&svc, &wanted_hash) {
            (Some(svc), Some(hash)) => svc.content_hash == *hash,
            _ => false,
        };
        if !same || tokio::time::Instant::now() >= deadline {
            break svc;
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    };
    let Some(svc) = svc else {
        return Err(ApiError::NotFound(format!("unknown service ID: {id}")));
    };
    let mut response =
        (StatusCode::OK, [("Content-Type", "application/json")], json_body(&svc, params.pretty)?)
            .into_response();
    if let Ok(hash) = HeaderValue::from_str(&svc.content_hash) {
        response.headers_mut().insert("X-Consul-ContentHash", hash);
    }
    Ok(response)
}

#[derive(Serialize)]
struct ServiceHealth {
    #[serde(rename = "AggregatedStatus")]
    aggregated_status: &'static str,
    #[serde(rename = "Service")]
    service: AgentService,
    #[serde(rename = "Checks")]
    checks: Vec<HealthCheck>,
}

/// Consul's aggregate: `maintenance` if a maintenance check is present, else the worst status.
fn aggregate(checks: &[HealthCheck]) -> &'static str {
    let in_maintenance = checks.iter().any(|c| {
        c.check_id == maintenance::NODE_CHECK || c.check_id.starts_with(maintenance::SERVICE_CHECK_PREFIX)
    });
    if in_maintenance {
        return "maintenance";
    }
    let worst = |status: &str| checks.iter().any(|c| c.status == status);
    if worst("critical") {
        "critical"
    } else if worst("warning") {
        "warning"
    } else {
        "passing"
    }
}

fn status_code(aggregated: &str) -> StatusCode {
    match aggregated {
        "passing" => StatusCode::OK,
        "warning" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The service's own checks and its node's, as this agent sees them.
fn service_health(s: &CatalogState, node: &str, id: &str, dc: &str) -> Option<ServiceHealth> {
    let svc = s.service(node, id)?;
    let checks: Vec<HealthCheck> = s
        .node_checks(node)
        .into_iter()
        .filter(|c| c.service_id == id || c.service_id.is_empty())
        .filter(|c| c.id != super::agent::SERF_HEALTH)
        .map(convert::health_check)
        .collect();
    Some(ServiceHealth {
        aggregated_status: aggregate(&checks),
        service: convert::local_service(svc, dc),
        checks,
    })
}

fn answer<T: Serialize>(code: StatusCode, text: &str, value: &T, params: &Params) -> ApiResult<Response> {
    if params.get("format") == Some("text") {
        return Ok((code, [("Content-Type", "text/plain")], text.to_string()).into_response());
    }
    Ok((code, [("Content-Type", "application/json")], json_body(value, params.pretty)?).into_response())
}

pub async fn health_by_id(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let (node, dc) = (state.info.node_name.clone(), state.info.datacenter.clone());
    if let Some(name) = state.catalog.read(|s| s.service(&node, &id).map(|svc| svc.name.clone())) {
        authz.require(Resource::Service, &name, Access::Read)?;
    }
    match state.catalog.read(|s| service_health(s, &node, &id, &dc)) {
        Some(health) => {
            answer(status_code(health.aggregated_status), health.aggregated_status, &health, &params)
        }
        None => {
            let text = format!("ServiceId {id} not found");
            answer(StatusCode::NOT_FOUND, &text, &text, &params)
        }
    }
}

pub async fn health_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let (node, dc) = (state.info.node_name.clone(), state.info.datacenter.clone());
    let entries: Vec<ServiceHealth> = state.catalog.read(|s| {
        let ids: Vec<String> =
            local_services(s, &node).filter(|svc| svc.name == name).map(|svc| svc.id.clone()).collect();
        ids.iter().filter_map(|id| service_health(s, &node, id, &dc)).collect()
    });
    if entries.is_empty() {
        let text = format!("ServiceName {name} Not Found");
        return answer(StatusCode::NOT_FOUND, &text, &entries, &params);
    }
    // The worst instance decides, maintenance above critical.
    let rank = |a: &str| match a {
        "passing" => 0,
        "warning" => 1,
        "critical" => 2,
        _ => 3,
    };
    let worst = entries.iter().map(|e| e.aggregated_status).max_by_key(|a| rank(a)).unwrap_or("passing");
    answer(status_code(worst), worst, &entries, &params)
}
