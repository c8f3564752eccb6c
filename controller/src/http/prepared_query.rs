//! `/v1/query`: prepared queries, stored through Raft and executed against this datacenter's
//! catalog. census has one datacenter, so a query that finds nothing here fails over nowhere
//! (`Failovers` is 0); queries bound to a session must name a live one.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::health::service_entry;
use super::query::{Params, blocking, json_response, query_response};
use super::{AppState, empty_ok};
use crate::catalog::{CatalogState, CheckStatus, Command, CommandResult, DocKind, DocWrite, Table, WatchKey};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Failover {
    #[serde(rename = "NearestN")]
    pub nearest_n: u32,
    pub datacenters: Option<Vec<String>>,
    pub targets: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceQuery {
    pub service: String,
    pub sameness_group: String,
    pub failover: Failover,
    pub only_passing: bool,
    #[serde(rename = "IgnoreCheckIDs")]
    pub ignore_check_ids: Option<Vec<String>>,
    pub near: String,
    pub tags: Option<Vec<String>>,
    pub node_meta: Option<std::collections::BTreeMap<String, String>>,
    pub service_meta: Option<std::collections::BTreeMap<String, String>>,
    pub connect: bool,
    pub peer: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryTemplate {
    #[serde(rename = "Type")]
    pub kind: String,
    pub regexp: String,
    pub remove_empty_tags: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryDns {
    #[serde(rename = "TTL")]
    pub ttl: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQuery {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub session: String,
    pub token: String,
    pub template: QueryTemplate,
    pub service: ServiceQuery,
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    pub create_index: u64,
    pub modify_index: u64,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Internal(message.into())
}

/// Consul's checks of a query definition (errors as its RPC words them: 500s).
fn validate(q: &PreparedQuery, s: &CatalogState) -> ApiResult<()> {
    if q.name.is_empty() && q.session.is_empty() {
        return Err(invalid("Invalid prepared query: Must be bound to a session"));
    }
    if q.service.service.is_empty() {
        return Err(invalid("Invalid prepared query: Must provide a Service name to query"));
    }
    if q.service.failover.targets.as_ref().is_some_and(|t| !t.is_empty())
        && (q.service.failover.nearest_n > 0
            || q.service.failover.datacenters.as_ref().is_some_and(|d| !d.is_empty()))
    {
        return Err(invalid("Targets cannot be populated with NearestN or Datacenters"));
    }
    if !q.dns.ttl.is_empty() {
        census_client::parse_duration(&q.dns.ttl)
            .map_err(|e| invalid(format!("Bad DNS TTL '{}': {e}", q.dns.ttl)))?;
    }
    match q.template.kind.as_str() {
        "" => {}
        "name_prefix_match" => {
            if !q.template.regexp.is_empty() {
                regex::Regex::new(&q.template.regexp).map_err(|e| invalid(format!("Bad Regexp: {e}")))?;
            }
        }
        other => return Err(invalid(format!("Bad Template.Type '{other}'"))),
    }
    if !q.session.is_empty() && s.session(&q.session).is_none() {
        return Err(invalid(format!("invalid session {:?}", q.session)));
    }
    Ok(())
}

async fn store(state: &AppState, q: PreparedQuery, cas: Option<u64>) -> ApiResult<()> {
    state.catalog.read(|s| validate(&q, s))?;
    let stored = PreparedQuery { create_index: 0, modify_index: 0, ..q.clone() };
    let write = DocWrite {
        kind: DocKind::PreparedQuery,
        key: q.id.clone(),
        unique_name: q.name.clone(),
        body: serde_json::to_string(&stored).map_err(|e| ApiError::Internal(e.to_string()))?,
        cas,
    };
    match state.write(Command::DocSet(write)).await {
        Err(ApiError::BadRequest(reason)) => {
            Err(invalid(format!("Name '{}' aliases an existing query name ({reason})", q.name)))
        }
        Err(e) => Err(e),
        Ok(CommandResult::Bool(false)) => {
            Err(invalid(format!("Cannot modify non-existent prepared query: '{}'", q.id)))
        }
        Ok(_) => Ok(()),
    }
}

fn stored(s: &CatalogState, id: &str) -> Option<PreparedQuery> {
    s.document(DocKind::PreparedQuery, id).and_then(|d| {
        let q: PreparedQuery = serde_json::from_str(&d.body).ok()?;
        Some(PreparedQuery { create_index: d.create_index, modify_index: d.modify_index, ..q })
    })
}

fn all(s: &CatalogState) -> Vec<PreparedQuery> {
    s.documents(DocKind::PreparedQuery, "").filter_map(|d| stored(s, &d.key)).collect()
}

async fn decode(headers: &HeaderMap, body: Body) -> ApiResult<PreparedQuery> {
    let bytes = read_body(headers, body, MAX_BODY, "Request body").await?;
    decode_json(&bytes)
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let mut q = decode(&headers, body).await?;
    if !q.id.is_empty() {
        return Err(invalid("ID must be empty when creating a new prepared query"));
    }
    q.id = super::session::new_uuid();
    let id = q.id.clone();
    store(&state, q, Some(0)).await?;
    json_response(&json!({"ID": id}), false)
}

pub async fn list(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    blocking(&state, &params, WatchKey::Tables(vec![Table::PreparedQueries]), |s| {
        (s.tables_index(&[Table::PreparedQueries]), all(s))
    })
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let (index, found) =
        super::query::block_on(&state, &params, WatchKey::Tables(vec![Table::PreparedQueries]), |s| {
            (s.tables_index(&[Table::PreparedQueries]), stored(s, &id))
        })
        .await?;
    match found {
        Some(q) => query_response(&state, &params, index, &vec![q]),
        None => Err(ApiError::NotFound("Query not found".into())),
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let mut q = decode(&headers, body).await?;
    q.id = id.clone();
    let Some(current) = state.catalog.read(|s| stored(s, &id)) else {
        return Err(invalid(format!("Cannot modify non-existent prepared query: '{id}'")));
    };
    store(&state, q, Some(current.modify_index)).await?;
    Ok(empty_ok())
}

pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    if state.catalog.read(|s| s.document(DocKind::PreparedQuery, &id).is_none()) {
        return Err(invalid(format!("Cannot delete non-existent prepared query: '{id}'")));
    }
    state.write(Command::DocDelete { kind: DocKind::PreparedQuery, key: id, cas: None }).await?;
    Ok(empty_ok())
}

/// The query an execute or explain names: by ID, by name, else the template whose name is the
/// longest prefix of it, rendered for that name.
fn resolve(s: &CatalogState, id_or_name: &str) -> Option<PreparedQuery> {
    if let Some(q) = stored(s, id_or_name) {
        return Some(q);
    }
    let queries = all(s);
    if let Some(q) = queries.iter().find(|q| q.name == id_or_name && q.template.kind.is_empty()) {
        return Some(q.clone());
    }
    let template = queries
        .iter()
        .filter(|q| q.template.kind == "name_prefix_match" && id_or_name.starts_with(&q.name))
        .max_by_key(|q| q.name.len())?;
    Some(render(template, id_or_name))
}

/// Consul's template interpolation: `${name.full}`, `${name.prefix}`, `${name.suffix}`,
/// `${match(N)}` of the template's `Regexp`.
fn render(template: &PreparedQuery, name: &str) -> PreparedQuery {
    let captures: Vec<String> = regex::Regex::new(&template.template.regexp)
        .ok()
        .and_then(|re| {
            re.captures(name).map(|c| c.iter().map(|m| m.map_or("", |m| m.as_str()).to_string()).collect())
        })
        .unwrap_or_default();
    let fill = |text: &str| {
        let mut out = text
            .replace("${name.full}", name)
            .replace("${name.prefix}", &template.name)
            .replace("${name.suffix}", name.strip_prefix(template.name.as_str()).unwrap_or(""));
        for (i, capture) in captures.iter().enumerate() {
            out = out.replace(&format!("${{match({i})}}"), capture);
        }
        out
    };
    let mut q = template.clone();
    q.service.service = fill(&q.service.service);
    if let Some(tags) = q.service.tags.as_mut() {
        *tags = tags
            .iter()
            .map(|t| fill(t))
            .filter(|t| !(template.template.remove_empty_tags && t.is_empty()))
            .collect();
    }
    q
}

fn meta_ok(
    wanted: &Option<std::collections::BTreeMap<String, String>>,
    have: &std::collections::BTreeMap<String, String>,
) -> bool {
    wanted.iter().flatten().all(|(k, v)| have.get(k) == Some(v))
}

/// Runs a query against the catalog: the instances as `/v1/health/service` shows them.
fn execute_query(s: &CatalogState, q: &PreparedQuery) -> Vec<census_client::types::ServiceEntry> {
    let tags = q.service.tags.clone().unwrap_or_default();
    let (exclude, include): (Vec<String>, Vec<String>) = tags.into_iter().partition(|t| t.starts_with('!'));
    let exclude: Vec<String> = exclude.iter().map(|t| t[1..].to_ascii_lowercase()).collect();
    let ignored = q.service.ignore_check_ids.clone().unwrap_or_default();
    s.health_of(&q.service.service, &include, false)
        .into_iter()
        .filter(|h| !h.service.tags.iter().any(|t| exclude.contains(&t.to_ascii_lowercase())))
        .filter(|h| {
            meta_ok(&q.service.node_meta, &h.node.meta) && meta_ok(&q.service.service_meta, &h.service.meta)
        })
        .filter(|h| {
            let counted = h.checks.iter().filter(|c| !ignored.contains(&c.id));
            let worst = counted.map(|c| c.status).max().unwrap_or(CheckStatus::Passing);
            worst == CheckStatus::Passing || (worst == CheckStatus::Warning && !q.service.only_passing)
        })
        .map(|h| service_entry(&h))
        .collect()
}

fn meta(state: &AppState, index: u64) -> Value {
    json!({
        "Index": index,
        "LastContact": state.cluster.last_contact_ms().saturating_mul(1_000_000),
        "KnownLeader": state.cluster.known_leader(),
        "ConsistencyLevel": "leader",
        "NotModified": false,
        "Backend": 0,
        "ResultsFilteredByACLs": false,
    })
}

pub async fn execute(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let limit = params
        .get("limit")
        .map(|l| l.parse::<usize>().map_err(|_| invalid(format!("Bad limit: {l}"))))
        .transpose()?;
    let own = state.info.node_name.clone();
    state.cluster.read_barrier(params.mode).await?;
    let (index, found) = state.catalog.read(|s| {
        let index = s.tables_index(&[Table::PreparedQueries, Table::Services, Table::Checks, Table::Nodes]);
        (
            index,
            resolve(s, &id).map(|q| {
                let nodes = execute_query(s, &q);
                (q, nodes)
            }),
        )
    });
    let Some((q, mut nodes)) = found else { return Err(ApiError::NotFound("Query not found".into())) };
    let near = params.get("near").filter(|n| !n.is_empty()).unwrap_or(&q.service.near).to_string();
    let near = if near == "_agent" { own } else { near };
    if !near.is_empty() {
        nodes.sort_by_key(|e| e.node.node != near);
    }
    if let Some(limit) = limit {
        nodes.truncate(limit);
    }
    let mut body = json!({
        "Service": q.service.service,
        "Nodes": nodes,
        "DNS": {"TTL": q.dns.ttl},
        "Datacenter": state.info.datacenter,
        "Failovers": 0,
    });
    if let (Some(out), Value::Object(m)) = (body.as_object_mut(), meta(&state, index)) {
        out.extend(m);
    }
    query_response(&state, &params.without_filter(), index, &body)
}

pub async fn explain(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let index = state.catalog.read(|s| s.tables_index(&[Table::PreparedQueries]));
    let Some(q) = state.catalog.read(|s| resolve(s, &id)) else {
        return Err(ApiError::NotFound("Query not found".into()));
    };
    let mut body = json!({"Query": q});
    if let (Some(out), Value::Object(m)) = (body.as_object_mut(), meta(&state, index)) {
        out.extend(m);
    }
    query_response(&state, &params, index, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_the_name() {
        let template = PreparedQuery {
            name: "geo-db-".into(),
            template: QueryTemplate {
                kind: "name_prefix_match".into(),
                regexp: "^geo-db-(.*?)-([^-]+?)$".into(),
                remove_empty_tags: true,
            },
            service: ServiceQuery {
                service: "mysql-${match(1)}".into(),
                tags: Some(vec!["${match(2)}".into(), "${name.suffix}".into(), "".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let q = render(&template, "geo-db-customer-primary");
        assert_eq!(q.service.service, "mysql-customer");
        assert_eq!(q.service.tags, Some(vec!["primary".to_string(), "customer-primary".to_string()]));
    }
}
