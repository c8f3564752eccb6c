//! `/v1/acl/templated-policies`, `templated-policy/name/:name`, `templated-policy/preview/:name`:
//! the built-in templates (`acl::identities::TEMPLATES`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{AppState, body, check, hash_of, new_id};
use crate::acl::Access;
use crate::acl::identities::{TEMPLATES, template};
use crate::acl::records::TemplateVariables;
use crate::http::authz::Authz;
use crate::http::error::{ApiError, ApiResult};
use crate::http::query::json_response;

/// Every template, keyed by name.
pub async fn list(State(state): State<AppState>, authz: Authz) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    let all: Map<String, Value> = TEMPLATES.iter().map(|t| (t.name.to_string(), t.describe())).collect();
    json_response(&all, false)
}

fn known(name: &str) -> ApiResult<&'static crate::acl::identities::Template> {
    template(name).ok_or_else(|| ApiError::NotFound(format!("Invalid templated policy Name: {name}")))
}

pub async fn read(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    json_response(&known(&name)?.describe(), false)
}

/// The policy a use of the template would grant, with a synthetic name.
pub async fn preview(
    State(state): State<AppState>,
    authz: Authz,
    Path(name): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Response> {
    check(&state, &authz, Access::Read)?;
    let tpl = known(&name)?;
    let vars: TemplateVariables = body(&headers, raw).await?;
    let rules = tpl.rules(&vars.name).ok_or_else(|| {
        ApiError::Internal(format!("Failed to validate variables for {name}: name is required"))
    })?;
    let id = new_id();
    json_response(
        &json!({
            "ID": id,
            "Name": format!("synthetic-policy-{}", &hash_of(&[&rules])[..16].replace(['/', '+'], "x")),
            "Description": format!("synthetic policy generated from templated policy: {name}"),
            "Rules": rules,
            "Hash": hash_of(&[&rules]),
            "CreateIndex": 0,
            "ModifyIndex": 0,
        }),
        false,
    )
}
