//! `/v1/kv/*`: the key/value store.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::convert;
use super::decode::{MAX_BODY, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, add_query_headers, block_on, query_not_found, query_response};
use crate::catalog::{Command, CommandResult, WatchKey};

fn validate_key(key: &str) -> ApiResult<()> {
    if key.contains(['\n', '\r', '\0']) {
        return Err(ApiError::BadRequest(format!("Invalid key {key:?}: contains a control character")));
    }
    Ok(())
}

pub async fn get_root(state: State<AppState>, params: Params) -> ApiResult<Response> {
    get(state, Path(String::new()), params).await
}

pub async fn get(
    State(state): State<AppState>,
    Path(key): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    validate_key(&key)?;
    let watch = WatchKey::KvPrefix(key.clone());
    if params.flag("keys") {
        let separator = params.get("separator").filter(|s| !s.is_empty()).map(str::to_string);
        let (index, keys) = block_on(&state, &params, watch, |s| {
            (s.kv_prefix_index(&key), s.kv_keys(&key, separator.as_deref()))
        })
        .await?;
        if keys.is_empty() {
            return Ok(query_not_found(&state, &params, index));
        }
        return query_response(&state, &params, index, &keys);
    }
    if params.flag("recurse") {
        let (index, pairs) = block_on(&state, &params, watch, |s| {
            (s.kv_prefix_index(&key), s.kv_list(&key).into_iter().map(convert::kv_pair).collect::<Vec<_>>())
        })
        .await?;
        if pairs.is_empty() {
            return Ok(query_not_found(&state, &params, index));
        }
        return query_response(&state, &params, index, &pairs);
    }
    let (index, found) = block_on(&state, &params, watch, |s| match s.kv_get(&key) {
        Some(r) => (r.modify_index, Some(r.clone())),
        None => (s.kv_prefix_index(&key), None),
    })
    .await?;
    let Some(record) = found else {
        return Ok(query_not_found(&state, &params, index));
    };
    if params.flag("raw") {
        let mut response = (
            StatusCode::OK,
            [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
            record.value,
        )
            .into_response();
        add_query_headers(response.headers_mut(), &state, &params, index);
        return Ok(response);
    }
    query_response(&state, &params, index, &vec![convert::kv_pair(&record)])
}

pub async fn put(
    State(state): State<AppState>,
    Path(key): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if key.is_empty() {
        return Err(ApiError::BadRequest("Missing key name".into()));
    }
    validate_key(&key)?;
    let flags = params.u64("flags")?.unwrap_or(0);
    let cas = params.u64("cas")?;
    let acquire = params.get("acquire").map(str::to_string);
    let release = params.get("release").map(str::to_string);
    let value = read_body(&headers, body, MAX_BODY, &format!("Value for key {key:?}")).await?.to_vec();
    let cmd = match (acquire, release) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest("Conflicting flags: acquire and release".into()));
        }
        (Some(session), None) => Command::KvLock { key, value, flags, session, now_ms: 0 },
        (None, Some(session)) => Command::KvUnlock { key, value, flags, session },
        (None, None) => Command::KvSet { key, value, flags, cas },
    };
    let locking = matches!(cmd, Command::KvLock { .. } | Command::KvUnlock { .. });
    let answer = match state.write(cmd).await {
        // An unknown or invalid session is an error of Consul's server: 500, as Patroni expects.
        Err(ApiError::BadRequest(reason)) if locking => return Err(ApiError::Internal(reason)),
        other => other?,
    };
    Ok(bool_response(&answer))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(key): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    validate_key(&key)?;
    let cmd = if params.flag("recurse") {
        Command::KvDeleteTree { prefix: key }
    } else {
        if key.is_empty() {
            return Err(ApiError::BadRequest("Missing key name".into()));
        }
        Command::KvDelete { key, cas: params.u64("cas")? }
    };
    let answer = state.write(cmd).await?;
    Ok(bool_response(&answer))
}

pub async fn delete_root(state: State<AppState>, params: Params) -> ApiResult<Response> {
    delete(state, Path(String::new()), params).await
}

fn bool_response(answer: &CommandResult) -> Response {
    super::bool_response(!matches!(answer, CommandResult::Bool(false)))
}
