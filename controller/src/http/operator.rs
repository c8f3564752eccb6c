//! `/v1/operator/autopilot/configuration` and `/state`, and `/v1/operator/usage`.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use census_client::overview::AutopilotConfiguration;
use serde_json::{Value, json};

use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, blocking};
use super::{AppState, bool_response};
use crate::catalog::{CatalogState, Command, CommandResult, DocKind, DocWrite, Table, WatchKey};

const AUTOPILOT_KEY: &str = "config";

/// The stored autopilot configuration, or Consul's defaults before anyone changed it.
pub fn autopilot_config(s: &CatalogState) -> AutopilotConfiguration {
    match s.document(DocKind::Autopilot, AUTOPILOT_KEY) {
        Some(doc) => AutopilotConfiguration {
            create_index: doc.create_index,
            modify_index: doc.modify_index,
            ..serde_json::from_str(&doc.body).unwrap_or_default()
        },
        None => AutopilotConfiguration::default(),
    }
}

pub async fn get_configuration(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    blocking(&state, &params, WatchKey::Tables(vec![Table::Autopilot]), |s| {
        (s.tables_index(&[Table::Autopilot]), autopilot_config(s))
    })
    .await
}

/// `PUT`: fields left out keep Consul's defaults (not the current values), as in Consul.
pub async fn set_configuration(
    State(state): State<AppState>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let cas = params
        .get("cas")
        .map(|v| v.parse::<u64>().map_err(|e| ApiError::BadRequest(format!("Error parsing cas value: {e}"))))
        .transpose()?;
    let bytes = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let config: AutopilotConfiguration = decode_json(&bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "Error parsing autopilot config: {}",
            e.to_string().trim_start_matches("Request decode failed: ")
        ))
    })?;
    let stored = AutopilotConfiguration { create_index: 0, modify_index: 0, ..config };
    let write = DocWrite {
        kind: DocKind::Autopilot,
        key: AUTOPILOT_KEY.into(),
        unique_name: String::new(),
        body: serde_json::to_string(&stored).map_err(|e| ApiError::Internal(e.to_string()))?,
        cas,
    };
    let answer = state.write(Command::DocSet(write)).await?;
    Ok(bool_response(!matches!(answer, CommandResult::Bool(false))))
}

/// `GET /v1/operator/autopilot/state`, built from the same server health as `/health`.
pub async fn state(State(state): State<AppState>) -> ApiResult<Response> {
    let health = super::overview::server_health(state.server()?).await;
    let leader = health.servers.iter().find(|s| s.leader).map(|s| s.id.clone()).unwrap_or_default();
    let voters: Vec<&String> = health.servers.iter().filter(|s| s.voter).map(|s| &s.id).collect();
    let servers: BTreeMap<String, Value> = health
        .servers
        .iter()
        .map(|s| {
            let status = if s.leader {
                "leader"
            } else if s.voter {
                "voter"
            } else {
                "non-voter"
            };
            let node_status = if s.serf_status == "alive" { "alive" } else { "failed" };
            (
                s.id.clone(),
                json!({
                    "ID": s.id, "Name": s.name, "Address": s.address, "NodeStatus": node_status,
                    "Version": s.version, "LastContact": s.last_contact, "LastTerm": s.last_term,
                    "LastIndex": s.last_index, "Healthy": s.healthy, "StableSince": "1970-01-01T00:00:00Z",
                    "ReadReplica": false, "Status": status, "Meta": {}, "NodeType": "voter",
                }),
            )
        })
        .collect();
    let body = json!({
        "Healthy": health.healthy,
        "FailureTolerance": health.failure_tolerance,
        "OptimisticFailureTolerance": health.failure_tolerance,
        "Servers": servers,
        "Leader": leader,
        "Voters": voters,
    });
    super::query::json_response(&body, false)
}

/// Consul's usage counts for this datacenter.
fn usage(s: &CatalogState) -> Value {
    let mut names = BTreeSet::new();
    let mut instances = 0u64;
    let mut by_kind: BTreeMap<&str, u64> = [
        "api-gateway",
        "connect-native",
        "connect-proxy",
        "ingress-gateway",
        "mesh-gateway",
        "terminating-gateway",
    ]
    .into_iter()
    .map(|k| (k, 0))
    .collect();
    let mut not_billed = 0u64;
    for svc in s.all_services() {
        names.insert(svc.name.as_str());
        instances += 1;
        let kind = if svc.connect_native { "connect-native" } else { svc.kind.as_str() };
        if let Some(n) = by_kind.get_mut(kind) {
            *n += 1;
        }
        if svc.kind == "connect-proxy" || svc.name == super::agent::SERVER_SERVICE {
            not_billed += 1;
        }
    }
    json!({
        "Services": names.len(),
        "ServiceInstances": instances,
        "ConnectServiceInstances": by_kind,
        "BillableServiceInstances": instances - not_billed,
        "Nodes": s.nodes().count(),
    })
}

pub async fn operator_usage(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    state.cluster.read_barrier(params.mode).await?;
    let (index, counts) =
        state.catalog.read(|s| (s.tables_index(&[Table::Nodes, Table::Services]), usage(s)));
    let body = json!({
        "Usage": {state.info.datacenter.clone(): counts},
        "Index": index,
        "LastContact": state.cluster.last_contact_ms().saturating_mul(1_000_000),
        "KnownLeader": state.cluster.known_leader(),
        "ConsistencyLevel": if params.mode == crate::raft::ReadMode::Stale { "stale" } else { "leader" },
        "NotModified": false,
        "Backend": 0,
        "ResultsFilteredByACLs": false,
    });
    super::query::query_response(&state, &params, index, &body)
}
