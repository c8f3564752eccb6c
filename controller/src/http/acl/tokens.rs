//! `/v1/acl/token*`: create, read, self, update, clone, delete, list.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::{AppState, acl_table, body, check, hash_of, new_id, save};
use crate::acl::records::{
    ANONYMOUS_ACCESSOR, Link, NodeIdentity, Policy, Role, ServiceIdentity, TemplatedPolicy, Token,
};
use crate::acl::{Access, identities, store};
use crate::catalog::CatalogState;
use crate::http::authz::{Authz, request_token};
use crate::http::error::{ApiError, ApiResult};
use crate::http::query::{Params, blocking, json_response};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TokenRequest {
    #[serde(rename = "AccessorID")]
    accessor_id: String,
    #[serde(rename = "SecretID")]
    secret_id: String,
    description: Option<String>,
    policies: Option<Vec<Link>>,
    roles: Option<Vec<Link>>,
    service_identities: Option<Vec<ServiceIdentity>>,
    node_identities: Option<Vec<NodeIdentity>>,
    templated_policies: Option<Vec<TemplatedPolicy>>,
    local: bool,
    expiration_time: Option<String>,
    #[serde(rename = "ExpirationTTL")]
    expiration_ttl: String,
}

/// A token as the API shows it; `secret` false hides the SecretID (list without acl:write).
pub fn view(token: &Token, secret: bool) -> Value {
    let mut v = serde_json::to_value(token).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.remove("Management");
        if !secret {
            map.insert("SecretID".into(), Value::String("<hidden>".into()));
        }
    }
    v
}

/// Policy and role links given by ID or by name, completed with the other; an unknown one is an error.
fn resolve_links(s: &CatalogState, links: Vec<Link>, policies: bool) -> ApiResult<Vec<Link>> {
    let mut out: Vec<Link> = Vec::new();
    for link in links {
        let found = if policies {
            let p: Option<Policy> =
                if link.id.is_empty() { store::by_name(s, &link.name) } else { store::get(s, &link.id) };
            p.map(|p| Link { id: p.id, name: p.name })
        } else {
            let r: Option<Role> =
                if link.id.is_empty() { store::by_name(s, &link.name) } else { store::get(s, &link.id) };
            r.map(|r| Link { id: r.id, name: r.name })
        };
        let what = if policies { "policy" } else { "role" };
        let Some(found) = found else {
            return Err(ApiError::Internal(if link.id.is_empty() {
                format!("No such ACL {what} with name {:?}", link.name)
            } else {
                format!("No such ACL {what} with ID {:?}", link.id)
            }));
        };
        if !out.iter().any(|l| l.id == found.id) {
            out.push(found);
        }
    }
    Ok(out)
}

pub fn check_identities(
    services: &[ServiceIdentity],
    nodes: &[NodeIdentity],
    templated: &[TemplatedPolicy],
) -> ApiResult<()> {
    let valid = |n: &str| {
        !n.is_empty()
            && n.len() <= 256
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if let Some(bad) = services.iter().find(|s| !valid(&s.service_name)) {
        return Err(ApiError::Internal(format!(
            "Service identity {:?} has an invalid name",
            bad.service_name
        )));
    }
    if let Some(bad) = nodes.iter().find(|n| !valid(&n.node_name) || n.datacenter.is_empty()) {
        return Err(ApiError::Internal(format!(
            "Node identity {:?} needs a valid name and a datacenter",
            bad.node_name
        )));
    }
    for t in templated {
        let name = t.template_variables.as_ref().map(|v| v.name.as_str()).unwrap_or("");
        match identities::template(&t.template_name) {
            None => {
                return Err(ApiError::Internal(format!(
                    "templated policy {:?} does not exist",
                    t.template_name
                )));
            }
            Some(tpl) if tpl.rules(name).is_none() => {
                return Err(ApiError::Internal(format!(
                    "templated policy {:?} needs the variable name",
                    t.template_name
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Applies a request to a token (new or stored), checking what it names.
fn fill(s: &CatalogState, token: &mut Token, req: TokenRequest) -> ApiResult<()> {
    if let Some(d) = req.description {
        token.description = d;
    }
    if let Some(p) = req.policies {
        token.policies = resolve_links(s, p, true)?;
    }
    if let Some(r) = req.roles {
        token.roles = resolve_links(s, r, false)?;
    }
    if let Some(si) = req.service_identities {
        token.service_identities = si;
    }
    if let Some(ni) = req.node_identities {
        token.node_identities = ni;
    }
    if let Some(tp) = req.templated_policies {
        token.templated_policies = tp;
    }
    check_identities(&token.service_identities, &token.node_identities, &token.templated_policies)?;
    if token.local && token.service_identities.iter().any(|s| !s.datacenters.is_empty()) {
        return Err(ApiError::Internal("cannot specify a list of datacenters on a local token".into()));
    }
    let links: Vec<&str> = token.policies.iter().chain(&token.roles).map(|l| l.id.as_str()).collect();
    token.hash = hash_of(&[
        &token.description,
        &links.join(","),
        &serde_json::to_string(&token.service_identities).unwrap_or_default(),
    ]);
    Ok(())
}

fn expiration(req: &TokenRequest) -> ApiResult<Option<String>> {
    if !req.expiration_ttl.is_empty() {
        if req.expiration_time.is_some() {
            return Err(ApiError::Internal("Expiration TTL and Expiration Time cannot both be set".into()));
        }
        let ttl = census_client::parse_duration(&req.expiration_ttl)
            .map_err(|e| ApiError::Internal(format!("Invalid ExpirationTTL: {e}")))?;
        if ttl < std::time::Duration::from_secs(60) || ttl > std::time::Duration::from_secs(24 * 3600) {
            return Err(ApiError::Internal("Expiration TTL must be between 1m0s and 24h0m0s".into()));
        }
        return Ok(Some(crate::agent::log_stream::rfc3339(std::time::SystemTime::now() + ttl)));
    }
    Ok(req.expiration_time.clone().filter(|t| !t.is_empty()))
}

fn read_token(state: &AppState, id: &str) -> ApiResult<Token> {
    state
        .catalog
        .read(|s| store::get::<Token>(s, id))
        .ok_or_else(|| ApiError::PermissionDenied("ACL not found".into()))
}

/// `PUT /v1/acl/token`
pub async fn create(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: TokenRequest = body(&headers, raw).await?;
    let mut token = Token {
        accessor_id: if req.accessor_id.is_empty() { new_id() } else { req.accessor_id.clone() },
        secret_id: if req.secret_id.is_empty() { new_id() } else { req.secret_id.clone() },
        local: req.local,
        expiration_time: expiration(&req)?,
        create_time: crate::agent::log_stream::rfc3339(std::time::SystemTime::now()),
        ..Token::default()
    };
    state.catalog.read(|s| fill(s, &mut token, req))?;
    write(&state, &token, Some(0)).await
}

async fn write(state: &AppState, token: &Token, cas: Option<u64>) -> ApiResult<Response> {
    save(
        state,
        store::put(token, cas),
        "Invalid Token: AccessorID is already in use",
        "Invalid Token: SecretID is already in use",
    )
    .await?;
    let stored =
        state.catalog.read(|s| store::get::<Token>(s, &token.accessor_id)).unwrap_or_else(|| token.clone());
    json_response(&view(&stored, true), false)
}

/// `PUT /v1/acl/token/:id`
pub async fn update(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: TokenRequest = body(&headers, raw).await?;
    if !req.accessor_id.is_empty() && req.accessor_id != id {
        return Err(ApiError::BadRequest("Token Accessor ID in URL and payload do not match".into()));
    }
    let mut token = state
        .catalog
        .read(|s| store::get::<Token>(s, &id))
        .ok_or_else(|| ApiError::Internal(format!("Cannot find token {id:?}")))?;
    if !req.secret_id.is_empty() && req.secret_id != token.secret_id {
        return Err(ApiError::Internal("Changing a token's SecretID is not permitted".into()));
    }
    if req.expiration_time.is_some() || !req.expiration_ttl.is_empty() {
        return Err(ApiError::Internal("Cannot change expiration time".into()));
    }
    let cas = Some(token.modify_index);
    state.catalog.read(|s| fill(s, &mut token, req))?;
    write(&state, &token, cas).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CloneRequest {
    description: Option<String>,
}

/// `PUT /v1/acl/token/:id/clone`: the same grants under a new AccessorID and SecretID.
pub async fn clone(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: CloneRequest = body(&headers, raw).await?;
    let source = read_token(&state, &id)?;
    if !source.auth_method.is_empty() {
        return Err(ApiError::Internal("Cannot clone a token created from an auth method".into()));
    }
    let token = Token {
        accessor_id: new_id(),
        secret_id: new_id(),
        description: req.description.unwrap_or(source.description.clone()),
        create_time: crate::agent::log_stream::rfc3339(std::time::SystemTime::now()),
        ..source
    };
    write(&state, &token, Some(0)).await
}

/// `GET /v1/acl/token/:id`
pub async fn read(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    let secret = authz.allows(crate::acl::Resource::Acl, "", Access::Write);
    read_token(&state, &id)?;
    blocking(&state, &params, acl_table(), |s| {
        let t = store::get::<Token>(s, &id);
        (t.as_ref().map_or(1, |t| t.modify_index), t.map(|t| view(&t, secret)))
    })
    .await
}

/// `GET /v1/acl/token/self`: the request's own token; needs no ACL permission.
pub async fn read_self(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Response> {
    if !state.acl.enabled() {
        return Err(ApiError::AclDisabled);
    }
    let secret = request_token(&headers, uri.query());
    let token = state
        .catalog
        .read(|s| store::by_name::<Token>(s, &secret))
        .filter(|_| !secret.is_empty())
        .ok_or_else(|| ApiError::NotFound("Supplied token does not exist".into()))?;
    blocking(&state, &params, acl_table(), |_| (token.modify_index, view(&token, true))).await
}

/// `DELETE /v1/acl/token/:id`
pub async fn delete(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    if id == ANONYMOUS_ACCESSOR {
        return Err(ApiError::Internal("Delete operation not permitted on the anonymous token".into()));
    }
    if id == authz.0.accessor_id {
        return Err(ApiError::Internal(
            "Deletion of the request's authorization token is not permitted".into(),
        ));
    }
    super::delete_one::<Token>(&state, &id, "token").await
}

/// `GET /v1/acl/tokens`, optionally only those linking a policy, role, auth method or service.
pub async fn list(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    let arg = |name: &str| params.get(name).unwrap_or("").to_string();
    let (policy, role, method, service) = (arg("policy"), arg("role"), arg("authmethod"), arg("servicename"));
    let secret = authz.allows(crate::acl::Resource::Acl, "", Access::Write);
    blocking(&state, &params, acl_table(), |s| {
        let tokens: Vec<Value> = store::all::<Token>(s)
            .into_iter()
            .filter(|t| policy.is_empty() || t.policies.iter().any(|l| l.id == policy))
            .filter(|t| role.is_empty() || t.roles.iter().any(|l| l.id == role))
            .filter(|t| method.is_empty() || t.auth_method == method)
            .filter(|t| {
                service.is_empty() || t.service_identities.iter().any(|si| si.service_name == service)
            })
            .map(|t| view(&t, secret))
            .collect();
        (s.table_index(crate::catalog::Table::Autopilot), tokens)
    })
    .await
}
