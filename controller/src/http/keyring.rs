//! `/v1/operator/keyring`: gossip encryption keys, as Consul's operator endpoint serves them.
//! GET counts who has which key (a WAN entry of the servers, then the LAN pool); POST installs,
//! PUT makes primary and DELETE removes a key on every member, answering once every alive
//! member reports it done, or 500 naming the members that did not.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json_response};
use crate::gossip::keyring::KeyError;
use crate::gossip::{GossipError, KeyOp, KeyringView};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct KeyringRequest {
    key: String,
}

/// One pool's answer, Consul's `KeyringResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PoolKeys {
    #[serde(rename = "WAN")]
    wan: bool,
    datacenter: String,
    segment: String,
    messages: std::collections::BTreeMap<String, String>,
    keys: std::collections::BTreeMap<String, usize>,
    primary_keys: std::collections::BTreeMap<String, usize>,
    num_nodes: usize,
}

/// Consul's error text when members (`failed` of `total`) reported failure, one line each.
fn pool_errors(dc: &str, total: usize, failed: &[(String, String)]) -> ApiError {
    let mut errors = vec![format!("{dc} (LAN) error: {}/{total} nodes reported failure", failed.len())];
    errors.extend(failed.iter().map(|(name, why)| format!("{name}: {why}")));
    let lines: Vec<String> = errors.iter().map(|e| format!("\t* {e}")).collect();
    ApiError::Internal(format!("{} errors occurred:\n{}\n\n", errors.len(), lines.join("\n")))
}

/// Without encryption every member answers with this error, as in Consul.
fn not_enabled(state: &AppState, why: KeyError) -> ApiError {
    let alive: Vec<(String, String)> = state
        .gossip
        .members()
        .into_iter()
        .filter(|m| m.status == crate::gossip::Status::Alive)
        .map(|m| (m.peer.name, why.to_string()))
        .collect();
    pool_errors(&state.info.datacenter, alive.len(), &alive)
}

pub async fn list(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    if !state.gossip.keyring().is_enabled() {
        return Err(not_enabled(&state, KeyError::Empty));
    }
    let pool = |wan: bool, view: KeyringView| PoolKeys {
        wan,
        datacenter: state.info.datacenter.clone(),
        segment: String::new(),
        messages: Default::default(),
        keys: view.keys,
        primary_keys: view.primary,
        num_nodes: view.num_nodes,
    };
    let pools = if params.switch("local-only") {
        let keyring = state.gossip.keyring();
        let keys = keyring.keys();
        let view = KeyringView {
            primary: keys.first().map(|k| (k.clone(), 1)).into_iter().collect(),
            keys: keys.into_iter().map(|k| (k, 1)).collect(),
            num_nodes: 1,
        };
        vec![pool(false, view)]
    } else {
        let mut pools = Vec::new();
        if state.server.is_some() {
            pools.push(pool(true, state.gossip.keyring_view(true)));
        }
        pools.push(pool(false, state.gossip.keyring_view(false)));
        pools
    };
    json_response(&pools, params.pretty)
}

async fn change(state: AppState, headers: HeaderMap, body: Body, op: KeyOp) -> ApiResult<Response> {
    let bytes = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let request: KeyringRequest =
        if bytes.is_empty() { KeyringRequest::default() } else { decode_json(&bytes)? };
    match state.gossip.change_keyring(op, &request.key).await {
        Ok(outcome) if outcome.not_done.is_empty() => Ok(super::empty_ok()),
        Ok(outcome) => {
            let late: Vec<(String, String)> = outcome
                .not_done
                .into_iter()
                .map(|name| (name, "did not report the change in time".to_string()))
                .collect();
            Err(pool_errors(&state.info.datacenter, outcome.num_nodes, &late))
        }
        Err(GossipError::Keyring(KeyError::Disabled)) => Err(not_enabled(&state, KeyError::Disabled)),
        Err(GossipError::Keyring(e)) => {
            let me = vec![(state.info.node_name.clone(), e.to_string())];
            Err(pool_errors(&state.info.datacenter, 1, &me))
        }
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

pub async fn install(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    change(state, headers, body, KeyOp::Install).await
}

pub async fn use_key(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    change(state, headers, body, KeyOp::Use).await
}

pub async fn remove(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    change(state, headers, body, KeyOp::Remove).await
}
