//! `/v1/acl/auth-method*`, `/v1/acl/binding-rule*`, `/v1/acl/login`, `/v1/acl/logout`.
//!
//! Auth methods and binding rules are stored and validated as Consul does; logging in is
//! `login.rs`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::{AppState, acl_table, body, check, delete_one, existing, new_id, read_one, save};
use crate::acl::records::{AuthMethod, BindingRule, Token};
use crate::acl::{Access, store};
use crate::catalog::{CatalogState, Table};
use crate::http::authz::{Authz, request_token};
use crate::http::error::{ApiError, ApiResult};
use crate::http::query::{Params, blocking, json_response};

const METHOD_TYPES: [&str; 3] = ["kubernetes", "jwt", "oidc"];
const BIND_TYPES: [&str; 5] = ["service", "node", "role", "policy", "templated-policy"];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MethodRequest {
    name: String,
    #[serde(rename = "Type")]
    kind: String,
    display_name: String,
    description: String,
    #[serde(rename = "MaxTokenTTL")]
    max_token_ttl: String,
    token_locality: String,
    config: Value,
}

fn method_of(req: MethodRequest, existing: Option<&AuthMethod>) -> ApiResult<AuthMethod> {
    if req.name.is_empty() {
        return Err(ApiError::Internal("Invalid Auth Method: no Name is set".into()));
    }
    if !METHOD_TYPES.contains(&req.kind.as_str()) {
        return Err(ApiError::Internal(format!(
            "Invalid Auth Method: Type should be one of: {METHOD_TYPES:?}"
        )));
    }
    if existing.is_some_and(|m| m.kind != req.kind) {
        return Err(ApiError::Internal("Cannot change the Type of an auth method".into()));
    }
    if !matches!(req.token_locality.as_str(), "" | "local" | "global") {
        return Err(ApiError::Internal(
            "Invalid Auth Method: TokenLocality should be one of 'local' or 'global'".into(),
        ));
    }
    if !req.max_token_ttl.is_empty() {
        census_client::parse_duration(&req.max_token_ttl)
            .map_err(|e| ApiError::Internal(format!("Invalid Auth Method: MaxTokenTTL: {e}")))?;
    }
    if req.kind == "kubernetes" {
        for field in ["Host", "CACert", "ServiceAccountJWT"] {
            if req.config.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(ApiError::Internal(format!("Invalid Auth Method: Config.{field} is required")));
            }
        }
    }
    Ok(AuthMethod {
        name: req.name,
        kind: req.kind,
        display_name: req.display_name,
        description: req.description,
        max_token_ttl: req.max_token_ttl,
        token_locality: req.token_locality,
        config: if req.config.is_null() { Value::Object(Default::default()) } else { req.config },
        ..existing.cloned().unwrap_or_default()
    })
}

async fn write_method(state: &AppState, method: AuthMethod, cas: Option<u64>) -> ApiResult<Response> {
    let taken = format!("Invalid Auth Method: An Auth Method with Name {:?} already exists", method.name);
    save(state, store::put(&method, cas), &taken, &taken).await?;
    let stored = state.catalog.read(|s| store::get::<AuthMethod>(s, &method.name)).unwrap_or(method);
    json_response(&stored, false)
}

pub async fn create(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: MethodRequest = body(&headers, raw).await?;
    write_method(&state, method_of(req, None)?, Some(0)).await
}

pub async fn update(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let mut req: MethodRequest = body(&headers, raw).await?;
    if req.name.is_empty() {
        req.name = name.clone();
    } else if req.name != name {
        return Err(ApiError::BadRequest("Auth Method Name in URL and payload do not match".into()));
    }
    let existing: AuthMethod = existing(&state, &name, "auth method")?;
    let cas = Some(existing.modify_index);
    write_method(&state, method_of(req, Some(&existing))?, cas).await
}

/// Deleting a method also deletes its binding rules and the tokens it issued.
pub async fn delete(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    if state.catalog.read(|s| store::get::<AuthMethod>(s, &name).is_none()) {
        return Err(ApiError::NotFound("Cannot find auth method to delete".into()));
    }
    let (rules, tokens) = state.catalog.read(|s| {
        let rules: Vec<String> = store::all::<BindingRule>(s)
            .into_iter()
            .filter(|r| r.auth_method == name)
            .map(|r| r.id)
            .collect();
        let tokens: Vec<String> = store::all::<Token>(s)
            .into_iter()
            .filter(|t| t.auth_method == name)
            .map(|t| t.accessor_id)
            .collect();
        (rules, tokens)
    });
    let mut batch: Vec<crate::catalog::Command> =
        rules.iter().map(|id| store::delete::<BindingRule>(id)).collect();
    batch.extend(tokens.iter().map(|id| store::delete::<Token>(id)));
    batch.push(store::delete::<AuthMethod>(&name));
    state.cluster.write(crate::catalog::Command::Batch(batch)).await?;
    Ok(crate::http::json_true())
}

pub async fn read(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    read_one(&state, &params, move |s| store::get::<AuthMethod>(s, &name)).await
}

pub async fn list(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    blocking(&state, &params, acl_table(), |s| {
        let list: Vec<Value> = store::all::<AuthMethod>(s)
            .into_iter()
            .map(|m| {
                let mut v = serde_json::to_value(&m).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("Config");
                }
                v
            })
            .collect();
        (s.table_index(Table::Autopilot), list)
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RuleRequest {
    #[serde(rename = "ID")]
    id: String,
    description: String,
    auth_method: String,
    selector: String,
    bind_type: String,
    bind_name: String,
}

fn rule_of(s: &CatalogState, req: RuleRequest, into: BindingRule) -> ApiResult<BindingRule> {
    if req.auth_method.is_empty() || store::get::<AuthMethod>(s, &req.auth_method).is_none() {
        return Err(ApiError::Internal(format!(
            "Invalid Binding Rule: unknown AuthMethod {:?}",
            req.auth_method
        )));
    }
    if !BIND_TYPES.contains(&req.bind_type.as_str()) {
        return Err(ApiError::Internal(format!(
            "Invalid Binding Rule: unknown BindType {:?}",
            req.bind_type
        )));
    }
    if req.bind_name.is_empty() {
        return Err(ApiError::Internal("Invalid Binding Rule: no BindName is set".into()));
    }
    Ok(BindingRule {
        description: req.description,
        auth_method: req.auth_method,
        selector: req.selector,
        bind_type: req.bind_type,
        bind_name: req.bind_name,
        ..into
    })
}

async fn write_rule(state: &AppState, rule: BindingRule, cas: Option<u64>) -> ApiResult<Response> {
    save(state, store::put(&rule, cas), "Invalid Binding Rule: it changed meanwhile", "").await?;
    let stored = state.catalog.read(|s| store::get::<BindingRule>(s, &rule.id)).unwrap_or(rule);
    json_response(&stored, false)
}

pub async fn create_rule(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: RuleRequest = body(&headers, raw).await?;
    if !req.id.is_empty() {
        return Err(ApiError::Internal("Cannot specify an ID when creating a binding rule".into()));
    }
    let rule =
        state.catalog.read(|s| rule_of(s, req, BindingRule { id: new_id(), ..BindingRule::default() }))?;
    write_rule(&state, rule, Some(0)).await
}

pub async fn update_rule(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: RuleRequest = body(&headers, raw).await?;
    if !req.id.is_empty() && req.id != id {
        return Err(ApiError::BadRequest("BindingRule ID in URL and payload do not match".into()));
    }
    let existing: BindingRule = existing(&state, &id, "binding rule")?;
    let cas = Some(existing.modify_index);
    let rule = state.catalog.read(|s| rule_of(s, req, existing))?;
    write_rule(&state, rule, cas).await
}

pub async fn delete_rule(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    delete_one::<BindingRule>(&state, &id, "binding rule").await
}

pub async fn read_rule(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    super::policies::valid_id(&id)?;
    read_one(&state, &params, move |s| store::get::<BindingRule>(s, &id)).await
}

pub async fn list_rules(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    let method = params.get("authmethod").unwrap_or("").to_string();
    blocking(&state, &params, acl_table(), |s| {
        let rules: Vec<BindingRule> = store::all::<BindingRule>(s)
            .into_iter()
            .filter(|r| method.is_empty() || r.auth_method == method)
            .collect();
        (s.table_index(Table::Autopilot), rules)
    })
    .await
}

/// `POST /v1/acl/logout`: deletes the request's token if a login created it.
pub async fn logout(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !state.acl.enabled() {
        return Err(ApiError::AclDisabled);
    }
    let secret = request_token(&headers, uri.query());
    let token = state
        .catalog
        .read(|s| store::by_name::<Token>(s, &secret))
        .filter(|_| !secret.is_empty())
        .ok_or_else(|| ApiError::PermissionDenied("ACL not found".into()))?;
    if token.auth_method.is_empty() {
        return Err(ApiError::PermissionDenied(
            "Permission denied: token was not created by an auth method".into(),
        ));
    }
    state.cluster.write(store::delete::<Token>(&token.accessor_id)).await?;
    Ok(crate::http::json_true())
}
