//! Query parameters common to reads, blocking queries, and the response headers Consul clients read.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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
    /// Every `name=value` pair in order; a name may repeat (`?tag=a&tag=b`).
    raw: Vec<(String, String)>,
    pub index: u64,
    pub wait: Duration,
    pub mode: ReadMode,
    pub pretty: bool,
    /// `?filter=`, parsed up front so a bad expression is a 400 before any wait.
    pub filter: Option<Filter>,
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Params::from_query(parts.uri.query().unwrap_or(""))
    }
}

impl Params {
    /// Reads a query string (`a=1&b&tag=x&tag=y`).
    pub fn from_query(query: &str) -> ApiResult<Params> {
        let raw: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("Invalid query string: {e}")))?;
        Params::parse(raw)
    }

    pub fn parse(raw: Vec<(String, String)>) -> ApiResult<Params> {
        let first = |name: &str| raw.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let index = match first("index") {
            Some(v) if !v.is_empty() => {
                v.parse().map_err(|_| ApiError::BadRequest(format!("Invalid index: {v:?}")))?
            }
            _ => 0,
        };
        let wait = match first("wait") {
            Some(v) if !v.is_empty() => census_client::parse_duration(v)
                .map_err(|e| ApiError::BadRequest(format!("Invalid wait time: {e}")))?
                .min(MAX_WAIT),
            _ => DEFAULT_WAIT,
        };
        let mode = match (first("stale").is_some(), first("consistent").is_some()) {
            (true, true) => {
                return Err(ApiError::BadRequest(
                    "Cannot specify ?stale with ?consistent, conflicting semantics.".into(),
                ));
            }
            (true, false) => ReadMode::Stale,
            (false, true) => ReadMode::Consistent,
            (false, false) => ReadMode::Default,
        };
        let pretty = first("pretty").is_some();
        let filter = match first("filter") {
            Some(f) if !f.trim().is_empty() => {
                Some(Filter::parse(f).map_err(|e| ApiError::BadRequest(e.to_string()))?)
            }
            _ => None,
        };
        Ok(Params { raw, index, wait, mode, pretty, filter })
    }

    /// The same parameters without `?filter=` (for answers filtered before they are built).
    pub fn without_filter(&self) -> Params {
        Params { filter: None, ..self.clone() }
    }

    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A parameter given as a switch (`?passing`) or a boolean (`?passing=true`, `?passing=false`).
    pub fn switch(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !matches!(v, "false" | "0"))
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.raw.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// An optional unsigned number parameter.
    pub fn u64(&self, name: &str) -> ApiResult<Option<u64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| ApiError::BadRequest(format!("Invalid {name} value: {v:?}")))
            }
        }
    }

    /// `?tag=` values; an instance must carry all of them (Consul ANDs repeats).
    pub fn tags(&self) -> Vec<String> {
        self.all("tag").filter(|t| !t.is_empty()).map(str::to_string).collect()
    }

    /// `?node-meta=key:value` pairs; a node must carry all of them.
    pub fn node_meta(&self) -> ApiResult<Vec<(String, String)>> {
        self.all("node-meta")
            .map(|pair| match pair.split_once(':') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => Err(ApiError::BadRequest(format!("Invalid node-meta {pair:?}: want key:value"))),
            })
            .collect()
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
