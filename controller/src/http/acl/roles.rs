//! `/v1/acl/role*`: create, read (by ID or name), update, delete, list.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::tokens::check_identities;
use super::{AppState, acl_table, body, check, delete_one, existing, hash_of, new_id, read_one, save};
use crate::acl::records::{Link, NodeIdentity, Policy, Role, ServiceIdentity, TemplatedPolicy};
use crate::acl::{Access, store};
use crate::catalog::{CatalogState, Table};
use crate::http::authz::Authz;
use crate::http::error::{ApiError, ApiResult};
use crate::http::query::{Params, blocking, json_response};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RoleRequest {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    description: String,
    policies: Vec<Link>,
    service_identities: Vec<ServiceIdentity>,
    node_identities: Vec<NodeIdentity>,
    templated_policies: Vec<TemplatedPolicy>,
}

fn checked(s: &CatalogState, req: RoleRequest, into: Role) -> ApiResult<Role> {
    if req.name.is_empty() {
        return Err(ApiError::Internal("Invalid Role: no Name is set".into()));
    }
    check_identities(&req.service_identities, &req.node_identities, &req.templated_policies)?;
    let mut policies: Vec<Link> = Vec::new();
    for link in req.policies {
        let p: Option<Policy> =
            if link.id.is_empty() { store::by_name(s, &link.name) } else { store::get(s, &link.id) };
        let p = p.ok_or_else(|| {
            ApiError::Internal(if link.id.is_empty() {
                format!("No such ACL policy with name {:?}", link.name)
            } else {
                format!("No such ACL policy with ID {:?}", link.id)
            })
        })?;
        policies.push(Link { id: p.id, name: p.name });
    }
    let ids: Vec<&str> = policies.iter().map(|l| l.id.as_str()).collect();
    let hash = hash_of(&[&req.name, &req.description, &ids.join(",")]);
    Ok(Role {
        name: req.name,
        description: req.description,
        policies,
        service_identities: req.service_identities,
        node_identities: req.node_identities,
        templated_policies: req.templated_policies,
        hash,
        ..into
    })
}

async fn write(state: &AppState, role: Role, cas: Option<u64>) -> ApiResult<Response> {
    let clash = format!("Invalid Role: A Role with Name {:?} already exists", role.name);
    save(state, store::put(&role, cas), "Invalid Role: it changed meanwhile, try again", &clash).await?;
    let stored = state.catalog.read(|s| store::get::<Role>(s, &role.id)).unwrap_or(role);
    json_response(&stored, false)
}

/// `PUT /v1/acl/role`
pub async fn create(
    State(state): State<AppState>,
    authz: Authz,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: RoleRequest = body(&headers, raw).await?;
    if !req.id.is_empty() {
        return Err(ApiError::Internal("Cannot specify an ID when creating a role".into()));
    }
    let role = state.catalog.read(|s| checked(s, req, Role { id: new_id(), ..Role::default() }))?;
    write(&state, role, Some(0)).await
}

/// `PUT /v1/acl/role/:id`
pub async fn update(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    let req: RoleRequest = body(&headers, raw).await?;
    if !req.id.is_empty() && req.id != id {
        return Err(ApiError::BadRequest("Role ID in URL and payload do not match".into()));
    }
    let existing: Role = existing(&state, &id, "role")?;
    let cas = Some(existing.modify_index);
    let role = state.catalog.read(|s| checked(s, req, existing))?;
    write(&state, role, cas).await
}

/// `DELETE /v1/acl/role/:id`
pub async fn delete(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Write)?;
    delete_one::<Role>(&state, &id, "role").await
}

/// `GET /v1/acl/role/:id`: 404 when there is none.
pub async fn read(
    State(state): State<AppState>,
    authz: Authz,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    super::policies::valid_id(&id)?;
    read_one(&state, &params, move |s| store::get::<Role>(s, &id)).await
}

/// `GET /v1/acl/role/name/:name`
pub async fn read_by_name(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    read_one(&state, &params, move |s| store::by_name::<Role>(s, &name)).await
}

/// `GET /v1/acl/roles`, optionally only those linking `?policy=`.
pub async fn list(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    let policy = params.get("policy").unwrap_or("").to_string();
    blocking(&state, &params, acl_table(), |s| {
        let roles: Vec<Role> = store::all::<Role>(s)
            .into_iter()
            .filter(|r| policy.is_empty() || r.policies.iter().any(|l| l.id == policy))
            .collect();
        (s.table_index(Table::Autopilot), roles)
    })
    .await
}
