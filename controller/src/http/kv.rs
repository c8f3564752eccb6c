//! `/v1/kv/*`: the key/value store.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::authz::{Authz, filtered_header};
use super::convert;
use super::decode::{MAX_BODY, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, add_query_headers, block_on, query_not_found, query_response};
use crate::acl::{Access, Resource};
use crate::catalog::{Command, CommandResult, WatchKey};

fn validate_key(key: &str) -> ApiResult<()> {
    if key.contains(['\n', '\r', '\0']) {
        return Err(ApiError::BadRequest(format!("Invalid key {key:?}: contains a control character")));
    }
    Ok(())
}

pub async fn get_root(state: State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    get(state, authz, Path(String::new()), params).await
}

/// A listing of the keys the token may read, saying so when some were dropped.
fn filtered_listing<T: serde::Serialize>(
    state: &AppState,
    params: &Params,
    authz: &Authz,
    index: u64,
    all: Vec<T>,
    key_of: impl Fn(&T) -> &str,
) -> ApiResult<Response> {
    let total = all.len();
    let kept: Vec<T> =
        all.into_iter().filter(|t| authz.allows(Resource::Key, key_of(t), Access::Read)).collect();
    let dropped = kept.len() < total;
    let mut response = if kept.is_empty() {
        query_not_found(state, params, index)
    } else {
        query_response(state, params, index, &kept)?
    };
    if dropped {
        filtered_header(&mut response, authz);
    }
    Ok(response)
}

pub async fn get(
    State(state): State<AppState>,
    authz: Authz,
    Path(key): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    validate_key(&key)?;
    let watch = WatchKey::KvPrefix(key.clone());
    let listing = params.flag("keys") || params.flag("recurse");
    if listing && state.acl.config.enable_key_list_policy {
        authz.require(Resource::Key, &key, Access::List)?;
    }
    if params.flag("keys") {
        let separator = params.get("separator").filter(|s| !s.is_empty()).map(str::to_string);
        let (index, keys) = block_on(&state, &params, watch, |s| {
            (s.kv_prefix_index(&key), s.kv_keys(&key, separator.as_deref()))
        })
        .await?;
        return filtered_listing(&state, &params, &authz, index, keys, |k| k.as_str());
    }
    if params.flag("recurse") {
        let (index, pairs) = block_on(&state, &params, watch, |s| {
            (s.kv_prefix_index(&key), s.kv_list(&key).into_iter().map(convert::kv_pair).collect::<Vec<_>>())
        })
        .await?;
        return filtered_listing(&state, &params, &authz, index, pairs, |p| p.key.as_str());
    }
    authz.require(Resource::Key, &key, Access::Read)?;
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
    authz: Authz,
    Path(key): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if key.is_empty() {
        return Err(ApiError::BadRequest("Missing key name".into()));
    }
    validate_key(&key)?;
    authz.require(Resource::Key, &key, Access::Write)?;
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
    authz: Authz,
    Path(key): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    validate_key(&key)?;
    let tree = params.flag("recurse");
    if tree && !authz.0.authorizer.allows_all_under(Resource::Key, &key, Access::Write) {
        return Err(authz.denied(Resource::Key, &key, Access::Write));
    }
    if !tree {
        authz.require(Resource::Key, &key, Access::Write)?;
    }
    let cmd = if tree {
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

pub async fn delete_root(state: State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    delete(state, authz, Path(String::new()), params).await
}

fn bool_response(answer: &CommandResult) -> Response {
    super::bool_response(!matches!(answer, CommandResult::Bool(false)))
}
