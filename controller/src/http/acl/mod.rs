//! `/v1/acl/*`: bootstrap, tokens, policies, roles, auth methods, binding rules, templated
//! policies, login and logout, as Consul's API answers them. Every handler here checks the
//! request's token itself (`acl:read` to read, `acl:write` to write; `token/self` and `logout`
//! need only the token).

mod auth_methods;
mod login;
pub(super) mod policies;
mod roles;
mod templated;
mod tokens;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::authz::Authz;
use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, blocking, json_response, query_not_found};
use crate::acl::records::{GLOBAL_MANAGEMENT_ID, GLOBAL_MANAGEMENT_NAME, Link, Token};
use crate::acl::{Access, Resource, store};
use crate::catalog::{CatalogState, CommandResult, Table, WatchKey};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/acl/bootstrap", put(bootstrap))
        .route("/v1/acl/token", put(tokens::create))
        .route("/v1/acl/token/self", get(tokens::read_self))
        .route("/v1/acl/token/{id}", get(tokens::read).put(tokens::update).delete(tokens::delete))
        .route("/v1/acl/token/{id}/clone", put(tokens::clone))
        .route("/v1/acl/tokens", get(tokens::list))
        .route("/v1/acl/policy", put(policies::create))
        .route("/v1/acl/policy/name/{name}", get(policies::read_by_name))
        .route("/v1/acl/policy/{id}", get(policies::read).put(policies::update).delete(policies::delete))
        .route("/v1/acl/policies", get(policies::list))
        .route("/v1/acl/role", put(roles::create))
        .route("/v1/acl/role/name/{name}", get(roles::read_by_name))
        .route("/v1/acl/role/{id}", get(roles::read).put(roles::update).delete(roles::delete))
        .route("/v1/acl/roles", get(roles::list))
        .route("/v1/acl/auth-method", put(auth_methods::create))
        .route(
            "/v1/acl/auth-method/{name}",
            get(auth_methods::read).put(auth_methods::update).delete(auth_methods::delete),
        )
        .route("/v1/acl/auth-methods", get(auth_methods::list))
        .route("/v1/acl/binding-rule", put(auth_methods::create_rule))
        .route(
            "/v1/acl/binding-rule/{id}",
            get(auth_methods::read_rule).put(auth_methods::update_rule).delete(auth_methods::delete_rule),
        )
        .route("/v1/acl/binding-rules", get(auth_methods::list_rules))
        .route("/v1/acl/login", post(login::login))
        .route("/v1/acl/logout", post(auth_methods::logout))
        .route("/v1/acl/templated-policies", get(templated::list))
        .route("/v1/acl/templated-policy/name/{*name}", get(templated::read))
        .route("/v1/acl/templated-policy/preview/{*name}", post(templated::preview))
}

/// The table a blocking read of ACL records waits on (see `DocKind::table`).
fn acl_table() -> WatchKey {
    WatchKey::Tables(vec![Table::Autopilot])
}

/// ACLs on, and the token may `access` the ACL system.
fn check(state: &AppState, authz: &Authz, access: Access) -> ApiResult<()> {
    if !state.acl.enabled() {
        return Err(ApiError::AclDisabled);
    }
    authz.require(Resource::Acl, "", access)
}

/// One record as its read endpoint answers it: 404 when there is none, else a blocking read.
async fn read_one<T, F>(state: &AppState, params: &Params, find: F) -> ApiResult<Response>
where
    T: store::Stored,
    F: Fn(&CatalogState) -> Option<T>,
{
    if state.catalog.read(|s| find(s).is_none()) {
        let index = state.catalog.read(|s| s.table_index(Table::Autopilot));
        return Ok(query_not_found(state, params, index));
    }
    blocking(state, params, acl_table(), |s| {
        let found = find(s);
        (found.as_ref().map_or_else(|| s.table_index(Table::Autopilot), store::Stored::modify_index), found)
    })
    .await
}

/// The record an update replaces; Consul's 500 `Cannot find <what> "<key>"` when there is none.
fn existing<T: store::Stored>(state: &AppState, key: &str, what: &str) -> ApiResult<T> {
    state
        .catalog
        .read(|s| store::get::<T>(s, key))
        .ok_or_else(|| ApiError::Internal(format!("Cannot find {what} {key:?}")))
}

/// Deletes one record: 404 `Cannot find <what> to delete` when there is none.
async fn delete_one<T: store::Stored>(state: &AppState, key: &str, what: &str) -> ApiResult<Response> {
    if state.catalog.read(|s| store::get::<T>(s, key).is_none()) {
        return Err(ApiError::NotFound(format!("Cannot find {what} to delete")));
    }
    state.cluster.write(store::delete::<T>(key)).await?;
    Ok(super::json_true())
}

/// A JSON body; an empty one is `T::default()`.
async fn body<T: DeserializeOwned + Default>(headers: &HeaderMap, body: Body) -> ApiResult<T> {
    let bytes = read_body(headers, body, MAX_BODY, "Request body").await?;
    if bytes.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { decode_json(&bytes) }
}

/// Writes a record: a failed check-and-set (`taken`: the key exists) or a clash of unique names
/// (`clash`) is a 400 in Consul's words.
async fn save(state: &AppState, cmd: crate::catalog::Command, taken: &str, clash: &str) -> ApiResult<()> {
    match state.cluster.write(cmd).await?.1 {
        CommandResult::Rejected(_) => Err(ApiError::Internal(clash.to_string())),
        CommandResult::Bool(false) => Err(ApiError::Internal(taken.to_string())),
        _ => Ok(()),
    }
}

pub fn new_id() -> String {
    super::session::new_uuid()
}

/// A base64 SHA-256 of a record's meaningful fields, as Consul's `Hash`.
fn hash_of(parts: &[&str]) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct BootstrapRequest {
    bootstrap_secret: String,
}

/// `PUT /v1/acl/bootstrap`: the first management token, once.
async fn bootstrap(State(state): State<AppState>, headers: HeaderMap, raw: Body) -> ApiResult<Response> {
    if !state.acl.enabled() {
        return Err(ApiError::AclDisabled);
    }
    let req: BootstrapRequest = body(&headers, raw).await?;
    let reset_file = state.info.data_dir.as_ref().map(|d| d.join(BOOTSTRAP_RESET_FILE));
    let (_, first) = state.cluster.write(store::mark_bootstrapped(None)).await?;
    // Refused: bootstrapped already. The reset file, read only now (as Consul), may allow one
    // more.
    if first != CommandResult::Bool(true) {
        let specified = reset_file.as_deref().and_then(read_reset_index);
        let reset = || state.catalog.read(store::bootstrapped).unwrap_or(0);
        let Some(specified) = specified else {
            return Err(ApiError::PermissionDenied(format!(
                "Permission denied: ACL bootstrap no longer allowed (reset index: {})",
                reset()
            )));
        };
        let (_, again) = state.cluster.write(store::mark_bootstrapped(Some(specified))).await?;
        if again != CommandResult::Bool(true) {
            return Err(ApiError::Internal(format!(
                "Invalid bootstrap reset index (specified {specified}, reset index: {})",
                reset()
            )));
        }
    }
    if let Some(file) = reset_file.as_deref().filter(|f| f.exists()) {
        // Used once: a snapshot restored later must not make the cluster bootstrappable again.
        if let Err(e) = std::fs::remove_file(file) {
            tracing::warn!(path = %file.display(), error = %e, "removing the ACL bootstrap reset file");
        }
    }
    let secret = if req.bootstrap_secret.is_empty() { new_id() } else { req.bootstrap_secret };
    let token = management_token(new_id(), secret, "Bootstrap Token (Global Management)");
    let clash = "Invalid Token: SecretID is already in use";
    save(&state, store::put(&token, Some(0)), "Invalid Token: AccessorID is already in use", clash).await?;
    let stored = state.catalog.read(|s| store::get::<Token>(s, &token.accessor_id)).unwrap_or(token);
    // Consul's answer starts with `ID`, a copy of the SecretID older clients read.
    let mut answer = serde_json::Map::new();
    answer.insert("ID".into(), stored.secret_id.clone().into());
    if let serde_json::Value::Object(fields) = tokens::view(&stored, true) {
        answer.extend(fields);
    }
    json_response(&answer, false)
}

/// Where an operator who lost every management token writes the reset index that
/// `/v1/acl/bootstrap` reported, in the data dir of the server the request goes to.
const BOOTSTRAP_RESET_FILE: &str = "acl-bootstrap-reset";

/// The index in a reset file, when it holds one (as Consul, the first number in it).
fn read_reset_index(path: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let digits: String = text.trim_start().chars().take_while(char::is_ascii_digit).collect();
    match digits.parse() {
        // 0 names no index (nothing is bootstrapped at 0).
        Ok(0) => None,
        Ok(index) => {
            tracing::warn!(path = %path.display(), reset_index = index, "ACL bootstrap reset file read");
            Some(index)
        }
        Err(_) => {
            tracing::error!(path = %path.display(), "ACL bootstrap reset file holds no index");
            None
        }
    }
}

/// A token with the global-management policy.
pub fn management_token(accessor: String, secret: String, description: &str) -> Token {
    let now = crate::agent::log_stream::rfc3339(std::time::SystemTime::now());
    let hash = hash_of(&[&accessor, GLOBAL_MANAGEMENT_ID]);
    Token {
        accessor_id: accessor,
        secret_id: secret,
        description: description.to_string(),
        policies: vec![Link { id: GLOBAL_MANAGEMENT_ID.into(), name: GLOBAL_MANAGEMENT_NAME.into() }],
        create_time: now,
        hash,
        ..Token::default()
    }
}
