//! `/v1/session/*`: sessions, which KV locks are held by.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use census_client::format_duration;
use census_client::session::{ServiceCheckRef, SessionEntry, SessionRequest};
use rand::RngCore;

use super::AppState;
use super::authz::Authz;
use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, blocking, json_response};
use crate::acl::{Access, Resource};
use crate::catalog::{Command, CommandResult, SessionBehavior, SessionRecord, SessionSpec, Table, WatchKey};

const MIN_TTL: Duration = Duration::from_secs(10);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);

/// A random (version 4) UUID, as Consul's session IDs are.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Checks a create request and fills in Consul's defaults.
pub fn session_spec(req: SessionRequest, own_node: &str) -> ApiResult<SessionSpec> {
    let ttl = match req.ttl.as_str() {
        "" => Duration::ZERO,
        text => census_client::parse_duration(text)
            .map_err(|e| ApiError::BadRequest(format!("Request decode failed: TTL: {e}")))?,
    };
    // Consul's server refuses it, so its HTTP API answers 500 (Patroni looks for that status).
    if !ttl.is_zero() && !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::Internal(format!(
            "Invalid Session TTL '{}', must be between [{}-{}]",
            req.ttl,
            format_duration(MIN_TTL),
            format_duration(MAX_TTL)
        )));
    }
    let behavior = match req.behavior.as_str() {
        "" | "release" => SessionBehavior::Release,
        "delete" => SessionBehavior::Delete,
        other => return Err(ApiError::BadRequest(format!("Invalid Behavior setting '{other}'"))),
    };
    let lock_delay =
        req.lock_delay.and_then(|d| d.duration()).unwrap_or(DEFAULT_LOCK_DELAY).min(MAX_LOCK_DELAY);
    let node_checks = match (req.node_checks, req.checks) {
        (Some(checks), _) | (None, Some(checks)) => checks,
        (None, None) if req.service_checks.is_none() => vec!["serfHealth".to_string()],
        (None, None) => Vec::new(),
    };
    let service_checks = req.service_checks.unwrap_or_default().into_iter().map(|c| c.id).collect();
    Ok(SessionSpec {
        id: new_uuid(),
        name: req.name,
        node: if req.node.is_empty() { own_node.to_string() } else { req.node },
        lock_delay_ms: lock_delay.as_millis() as u64,
        behavior,
        ttl_ms: ttl.as_millis() as u64,
        node_checks,
        service_checks,
    })
}

pub fn session_entry(record: &SessionRecord) -> SessionEntry {
    let spec = &record.spec;
    let service_checks: Vec<ServiceCheckRef> = spec
        .service_checks
        .iter()
        .map(|id| ServiceCheckRef { id: id.clone(), namespace: String::new() })
        .collect();
    SessionEntry {
        id: spec.id.clone(),
        name: spec.name.clone(),
        node: spec.node.clone(),
        lock_delay: spec.lock_delay_ms * 1_000_000,
        behavior: spec.behavior.as_str().to_string(),
        ttl: if spec.ttl_ms == 0 {
            String::new()
        } else {
            format_duration(Duration::from_millis(spec.ttl_ms))
        },
        checks: spec.node_checks.iter().chain(&spec.service_checks).cloned().collect(),
        node_checks: spec.node_checks.clone(),
        service_checks: if service_checks.is_empty() { None } else { Some(service_checks) },
        create_index: record.create_index,
        modify_index: record.modify_index,
    }
}

pub async fn create(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let body = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let req: SessionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SessionRequest::default()
    } else {
        decode_json(&body)?
    };
    let spec = session_spec(req, &state.info.node_name)?;
    authz.require(Resource::Session, &spec.node, Access::Write)?;
    let id = spec.id.clone();
    state.write(Command::SessionCreate(spec)).await?;
    json_response(&serde_json::json!({ "ID": id }), false)
}

/// `session:write` on the session's node (a session that does not exist needs nothing).
fn may_write(state: &AppState, authz: &Authz, id: &str) -> ApiResult<()> {
    match state.catalog.read(|s| s.session(id).map(|r| r.spec.node.clone())) {
        Some(node) => authz.require(Resource::Session, &node, Access::Write),
        None => Ok(()),
    }
}

pub async fn destroy(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    may_write(&state, &authz, &id)?;
    state.write(Command::SessionDestroy { id, now_ms: 0 }).await?;
    Ok(super::json_true())
}

pub async fn renew(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    may_write(&state, &authz, &id)?;
    let (index, result) = state.cluster.write(Command::SessionRenew { id: id.clone() }).await?;
    if let CommandResult::Rejected(reason) = result {
        return Err(ApiError::NotFound(reason));
    }
    let entry = state.catalog.read(|s| s.session(&id).map(session_entry));
    match entry {
        Some(entry) => json_response(&vec![entry], false),
        // Invalidated between the renewal and this read.
        None => Err(ApiError::NotFound(format!("Session id '{id}' not found (renewed at index {index})"))),
    }
}

async fn listing(
    state: AppState,
    authz: Authz,
    params: Params,
    keep: impl Fn(&SessionRecord) -> bool,
) -> ApiResult<Response> {
    blocking(&state, &params, WatchKey::Tables(vec![Table::Sessions]), |s| {
        let sessions: Vec<SessionEntry> = s
            .sessions()
            .filter(|r| keep(r) && authz.allows(Resource::Session, &r.spec.node, Access::Read))
            .map(session_entry)
            .collect();
        (s.tables_index(&[Table::Sessions]), sessions)
    })
    .await
}

pub async fn info(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    listing(state, authz, params, move |r| r.spec.id == id).await
}

pub async fn node(
    State(state): State<AppState>,
    authz: Authz,
    Path(node): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    listing(state, authz, params, move |r| r.spec.node == node).await
}

pub async fn list(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    listing(state, authz, params, |_| true).await
}

#[cfg(test)]
mod tests {
    use census_client::session::{LockDelay, SessionRequest};

    use super::session_spec;

    #[test]
    fn defaults_and_limits_are_consuls() {
        let spec = session_spec(SessionRequest::default(), "n1").expect("defaults");
        assert_eq!(spec.node, "n1");
        assert_eq!(spec.node_checks, vec!["serfHealth".to_string()]);
        assert_eq!(spec.lock_delay_ms, 15_000);
        assert_eq!(spec.ttl_ms, 0);
        assert_eq!(spec.id.len(), 36);

        let req = |ttl: &str| SessionRequest { ttl: ttl.into(), ..Default::default() };
        assert!(session_spec(req("9s"), "n").is_err());
        assert!(session_spec(req("25h"), "n").is_err());
        assert_eq!(session_spec(req("10s"), "n").expect("10s").ttl_ms, 10_000);
        assert!(session_spec(req("ten"), "n").is_err());

        let bad = SessionRequest { behavior: "keep".into(), ..Default::default() };
        assert!(session_spec(bad, "n").is_err());

        // numbers below 1000 are seconds, larger ones nanoseconds; capped at 60 s
        let delay = |d| SessionRequest { lock_delay: Some(d), ..Default::default() };
        assert_eq!(session_spec(delay(LockDelay::Number(5)), "n").expect("5").lock_delay_ms, 5_000);
        assert_eq!(
            session_spec(delay(LockDelay::Number(2_000_000_000)), "n").expect("2e9").lock_delay_ms,
            2_000
        );
        assert_eq!(session_spec(delay(LockDelay::Number(600)), "n").expect("600").lock_delay_ms, 60_000);

        // explicit empty node checks: a session bound to nothing
        let none = SessionRequest { node_checks: Some(Vec::new()), ..Default::default() };
        assert!(session_spec(none, "n").expect("none").node_checks.is_empty());
    }
}
