//! `/v1/acl/policy*`: create, read (by ID or name), update, delete, list.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::{AppState, acl_table, body, check, delete_one, existing, hash_of, new_id, read_one, save};
use crate::acl::records::{GLOBAL_MANAGEMENT_ID, Policy};
use crate::acl::{Access, rules, store};
use crate::catalog::Table;
use crate::http::authz::Authz;
use crate::http::error::{ApiError, ApiResult};
use crate::http::query::{Params, blocking, json_response};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PolicyRequest {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    description: String,
    rules: String,
    datacenters: Vec<String>,
}

/// The policy every cluster has, which the initial management and bootstrap tokens link.
pub fn global_management() -> Policy {
    Policy {
        id: GLOBAL_MANAGEMENT_ID.into(),
        name: crate::acl::records::GLOBAL_MANAGEMENT_NAME.into(),
        description: "Builtin Policy that grants unlimited access".into(),
        rules: GLOBAL_MANAGEMENT_RULES.into(),
        hash: hash_of(&[GLOBAL_MANAGEMENT_RULES]),
        ..Policy::default()
    }
}

const GLOBAL_MANAGEMENT_RULES: &str = "\nacl = \"write\"\nagent_prefix \"\" {\n  policy = \"write\"\n}\nevent_prefix \"\" {\n  policy = \"write\"\n}\nidentity_prefix \"\" {\n  policy = \"write\"\n}\nkey_prefix \"\" {\n  policy = \"write\"\n}\nkeyring = \"write\"\nnode_prefix \"\" {\n  policy = \"write\"\n}\noperator = \"write\"\nmesh = \"write\"\npeering = \"write\"\nquery_prefix \"\" {\n  policy = \"write\"\n}\nservice_prefix \"\" {\n  policy = \"write\"\n  intentions = \"write\"\n}\nsession_prefix \"\" {\n  policy = \"write\"\n}";

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn checked(req: PolicyRequest, into: Policy) -> ApiResult<Policy> {
    if req.name.is_empty() {
        return Err(ApiError::Internal("Invalid Policy: no Name is set".into()));
    }
    if !valid_name(&req.name) {
        return Err(ApiError::Internal(format!("Invalid Policy: invalid Name {:?}", req.name)));
    }
    rules::parse(&req.rules).map_err(|e| ApiError::Internal(format!("Invalid Policy: {e}")))?;
    let hash = hash_of(&[&req.name, &req.description, &req.rules, &req.datacenters.join(",")]);
    Ok(Policy {
        name: req.name,
        description: req.description,
        rules: req.rules,
        datacenters: req.datacenters,
        hash,
        ..into
    })
}

async fn write(state: &AppState, policy: Policy, cas: Option<u64>) -> ApiResult<Response> {
    let clash = format!("Invalid Policy: A Policy with Name {:?} already exists", policy.name);
    save(state, store::put(&policy, cas), "Invalid Policy: it changed meanwhile, try again", &clash).await?;
    let stored = state.catalog.read(|s| store::get::<Policy>(s, &policy.id)).unwrap_or(policy);
    json_response(&stored, false)
}

/// `PUT /v1/acl/policy`
pub async fn create(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: PolicyRequest = body(&headers, raw).await?;
    if !req.id.is_empty() {
        return Err(ApiError::Internal("Cannot specify an ID when creating a policy".into()));
    }
    let policy = checked(req, Policy { id: new_id(), ..Policy::default() })?;
    write(&state, policy, Some(0)).await
}

/// `PUT /v1/acl/policy/:id`
pub async fn update(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: PolicyRequest = body(&headers, raw).await?;
    if !req.id.is_empty() && req.id != id {
        return Err(ApiError::BadRequest("Policy ID in URL and payload do not match".into()));
    }
    let existing: Policy = existing(&state, &id, "policy")?;
    if id == GLOBAL_MANAGEMENT_ID && (req.rules != existing.rules || req.name != existing.name) {
        return Err(ApiError::Internal(
            "Changing the Rules or Name of the builtin global-management policy is not permitted".into(),
        ));
    }
    let cas = Some(existing.modify_index);
    let policy = checked(req, existing)?;
    write(&state, policy, cas).await
}

/// `DELETE /v1/acl/policy/:id`
pub async fn delete(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    if id == GLOBAL_MANAGEMENT_ID {
        return Err(ApiError::Internal(
            "Delete operation not permitted on the builtin global-management policy".into(),
        ));
    }
    delete_one::<Policy>(&state, &id, "policy").await
}

pub(super) fn valid_id(id: &str) -> ApiResult<()> {
    let hex = id.bytes().filter(|b| b.is_ascii_hexdigit()).count();
    let shape = id.len() == 36 && hex == 32 && id.bytes().filter(|b| *b == b'-').count() == 4;
    if shape { Ok(()) } else { Err(ApiError::Internal(format!("Invalid ID: {id:?} is not a UUID"))) }
}

/// `GET /v1/acl/policy/:id`: 404 when there is none.
pub async fn read(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    valid_id(&id)?;
    read_one(&state, &params, move |s| store::get::<Policy>(s, &id)).await
}

/// `GET /v1/acl/policy/name/:name`
pub async fn read_by_name(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    read_one(&state, &params, move |s| store::by_name::<Policy>(s, &name)).await
}

/// `GET /v1/acl/policies`: every policy without its rules.
pub async fn list(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    blocking(&state, &params, acl_table(), |s| {
        let list: Vec<Value> = store::all::<Policy>(s)
            .into_iter()
            .map(|p| {
                let mut v = serde_json::to_value(&p).unwrap_or_default();
                if let Some(m) = v.as_object_mut() {
                    m.remove("Rules");
                    m.entry("Datacenters").or_insert(Value::Null);
                }
                v
            })
            .collect();
        (s.table_index(Table::Autopilot), list)
    })
    .await
}
