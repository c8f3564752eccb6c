//! Query parameters common to reads, blocking queries, and the response headers Consul clients read.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Serialize;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::filter::Filter;
use crate::catalog::{CatalogState, WatchKey};
use crate::raft::ReadMode;

pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// The parsed query string of a request.
#[derive(Debug, Clone)]
pub struct Params {
    raw: HashMap<String, String>,
    pub index: u64,
    pub wait: Duration,
    pub mode: ReadMode,
    pub pretty: bool,
    /// `?filter=`, parsed up front so a bad expression is a 400 before any wait.
    pub filter: Option<Filter>,
}

impl Params {
    pub fn parse(raw: HashMap<String, String>) -> ApiResult<Params> {
        let index = match raw.get("index") {
            Some(v) if !v.is_empty() => {
                v.parse().map_err(|_| ApiError::BadRequest(format!("Invalid index: {v:?}")))?
            }
            _ => 0,
        };
        let wait = match raw.get("wait") {
            Some(v) if !v.is_empty() => census_client::parse_duration(v)
                .map_err(|e| ApiError::BadRequest(format!("Invalid wait time: {e}")))?
                .min(MAX_WAIT),
            _ => DEFAULT_WAIT,
        };
        let mode = match (raw.contains_key("stale"), raw.contains_key("consistent")) {
            (true, true) => {
                return Err(ApiError::BadRequest(
                    "Cannot specify ?stale with ?consistent, conflicting semantics.".into(),
                ));
            }
            (true, false) => ReadMode::Stale,
            (false, true) => ReadMode::Consistent,
            (false, false) => ReadMode::Default,
        };
        let pretty = raw.contains_key("pretty");
        let filter = match raw.get("filter") {
            Some(f) if !f.trim().is_empty() => {
                Some(Filter::parse(f).map_err(|e| ApiError::BadRequest(e.to_string()))?)
            }
            _ => None,
        };
        Ok(Params { raw, index, wait, mode, pretty, filter })
    }

    pub fn flag(&self, name: &str) -> bool {
        self.raw.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw.get(name).map(String::as_str)
    }

    /// An optional unsigned number parameter.
    pub fn u64(&self, name: &str) -> ApiResult<Option<u64>> {
        match self.raw.get(name) {
            None => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| ApiError::BadRequest(format!("Invalid {name} value: {v:?}")))
            }
        }
    }

    /// `?tag=` values (one only with serde's map; Consul ANDs repeats).
    pub fn tags(&self) -> Vec<String> {
        self.raw.get("tag").filter(|t| !t.is_empty()).map(|t| vec![t.clone()]).unwrap_or_default()
    }

    fn consistency_name(&self) -> &'static str {
        match self.mode {
            ReadMode::Default => "leader",
            ReadMode::Stale => "stale",
            ReadMode::Consistent => "consistent",
        }
    }
}

/// Minified JSON, or indented with `?pretty`.
pub fn json_body<T: Serialize>(value: &T, pretty: bool) -> ApiResult<Vec<u8>> {
    let mut out = if pretty { serde_json::to_vec_pretty(value) } else { serde_json::to_vec(value) }
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if pretty {
        out.push(b'\n');
    }
    Ok(out)
}

pub fn json_response<T: Serialize>(value: &T, pretty: bool) -> ApiResult<Response> {
    let body = json_body(value, pretty)?;
    Ok((StatusCode::OK, [("Content-Type", "application/json")], body).into_response())
}

/// A listing as JSON, narrowed by `?filter=` when the request has one.
pub fn listing_response<T: Serialize>(value: &T, params: &Params) -> ApiResult<Response> {
    let Some(filter) = &params.filter else { return json_response(value, params.pretty) };
    let mut listing = serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    filter.apply(&mut listing).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    json_response(&listing, params.pretty)
}

/// Adds `X-Consul-Index` (never 0), `X-Consul-KnownLeader`, `X-Consul-LastContact`.
pub fn add_query_headers(headers: &mut HeaderMap, state: &AppState, params: &Params, index: u64) {
    let cluster = &state.cluster;
    headers.insert("X-Consul-Index", HeaderValue::from(index.max(1)));
    headers.insert(
        "X-Consul-KnownLeader",
        HeaderValue::from_static(if cluster.known_leader() { "true" } else { "false" }),
    );
    headers.insert("X-Consul-LastContact", HeaderValue::from(cluster.last_contact_ms().min(u32::MAX as u64)));
    headers.insert("X-Consul-Effective-Consistency", HeaderValue::from_static(params.consistency_name()));
}

/// Runs a read as Consul's blocking query: with `?index=N`, waits (without polling) until the
/// read's index moves from N or `wait` (plus up to wait/16 jitter) runs out. Returns the index and value.
pub async fn block_on<T, F>(state: &AppState, params: &Params, key: WatchKey, read: F) -> ApiResult<(u64, T)>
where
    F: Fn(&CatalogState) -> (u64, T),
{
    state.cluster.read_barrier(params.mode).await?;
    let jitter = if params.wait.is_zero() {
        Duration::ZERO
    } else {
        let max = params.wait.as_millis() as u64 / 16;
        Duration::from_millis(rand::thread_rng().gen_range(0..=max))
    };
    let deadline = tokio::time::Instant::now() + params.wait + jitter;
    loop {
        let mut sub = state.catalog.hub().subscribe(&key);
        let (index, value) = state.catalog.read(&read);
        // An index below the client's means the catalog was replaced (snapshot restore): the
        // client must start over from this answer, as Consul's clients do.
        if params.index == 0 || index != params.index || tokio::time::Instant::now() >= deadline {
            return Ok((index, value));
        }
        drop(value);
        tokio::select! {
            _ = sub.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// A JSON answer to a read, with the query headers.
pub fn query_response<T: Serialize>(
    state: &AppState,
    params: &Params,
    index: u64,
    value: &T,
) -> ApiResult<Response> {
    let mut response = listing_response(value, params)?;
    add_query_headers(response.headers_mut(), state, params, index);
    Ok(response)
}

/// A 404 with an empty body and the query headers (missing key, empty listing).
pub fn query_not_found(state: &AppState, params: &Params, index: u64) -> Response {
    let mut response = (StatusCode::NOT_FOUND, "").into_response();
    add_query_headers(response.headers_mut(), state, params, index);
    response
}

/// `block_on`, answered as JSON.
pub async fn blocking<T, F>(state: &AppState, params: &Params, key: WatchKey, read: F) -> ApiResult<Response>
where
    T: Serialize,
    F: Fn(&CatalogState) -> (u64, T),
{
    let (index, value) = block_on(state, params, key, read).await?;
    query_response(state, params, index, &value)
}
