//! `/v1/config`: Consul's config entries (service-defaults, proxy-defaults, service-router, …),
//! stored, listed and deleted with check-and-set, as Consul's API answers. census keeps them for
//! the clients and tools that manage them; it does not act on them (it runs no service mesh),
//! except where a catalog read is defined by them (gateway services, ingress instances).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value};

use super::AppState;
use super::decode::{MAX_BODY, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, blocking, json_response};
use crate::catalog::{Command, CommandResult, DocKind, DocWrite, Table, WatchKey};

/// The kinds Consul's open-source edition knows.
const KINDS: &[&str] = &[
    "service-defaults",
    "proxy-defaults",
    "service-router",
    "service-splitter",
    "service-resolver",
    "ingress-gateway",
    "terminating-gateway",
    "service-intentions",
    "mesh",
    "exported-services",
    "sameness-group",
    "api-gateway",
    "bound-api-gateway",
    "http-route",
    "tcp-route",
    "file-system-certificate",
    "inline-certificate",
    "jwt-provider",
];

fn check_kind(kind: &str) -> ApiResult<()> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("invalid config entry kind: {kind}")))
    }
}

/// `protocol` → `Protocol`, `mesh_gateway` → `MeshGateway`: the top-level spellings Consul's
/// decoder accepts for an entry's fields.
fn camel(key: &str) -> String {
    if key.chars().any(|c| c.is_ascii_uppercase()) {
        return key.to_string();
    }
    key.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// A field an entry always shows, and the value it has when left out.
type FieldDefault = (&'static str, fn() -> Value);

/// The fields each kind always shows, as Consul fills them in.
fn defaults(kind: &str) -> &'static [FieldDefault] {
    fn empty() -> Value {
        Value::Object(Map::new())
    }
    fn text() -> Value {
        Value::String(String::new())
    }
    match kind {
        "service-defaults" => {
            &[("Protocol", text), ("TransparentProxy", empty), ("MeshGateway", empty), ("Expose", empty)]
        }
        "proxy-defaults" => &[
            ("Config", || Value::Null),
            ("TransparentProxy", empty),
            ("MeshGateway", empty),
            ("Expose", empty),
            ("AccessLogs", empty),
        ],
        _ => &[],
    }
}

/// Validates and normalizes an entry; its kind, name and the object to store.
pub fn normalize(body: Value) -> ApiResult<(String, String, Map<String, Value>)> {
    let Value::Object(raw) = body else {
        return Err(ApiError::BadRequest("Request decoding failed: the body must be a JSON object".into()));
    };
    let mut entry = Map::new();
    for (key, value) in raw {
        let key = camel(&key);
        if !matches!(key.as_str(), "CreateIndex" | "ModifyIndex" | "Hash") {
            entry.insert(key, value);
        }
    }
    let kind = match entry.get("Kind") {
        None => {
            return Err(ApiError::BadRequest(
                "Payload does not contain a kind/Kind key at the top level".into(),
            ));
        }
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err(ApiError::BadRequest("Kind value in payload is not a string".into())),
    };
    check_kind(&kind)?;
    let name = entry.get("Name").and_then(Value::as_str).unwrap_or("").to_string();
    let name = match kind.as_str() {
        "proxy-defaults" | "mesh" => {
            let only = if kind == "mesh" { "mesh" } else { "global" };
            if !name.is_empty() && name != only {
                return Err(ApiError::Internal(format!(
                    "invalid name ({name:?}), only {only:?} is supported"
                )));
            }
            only.to_string()
        }
        _ if name.is_empty() => return Err(ApiError::Internal("Name is required".into())),
        "service-defaults" if name == "*" => {
            return Err(ApiError::Internal(
                "service-defaults name must be the name of a service, and not a wildcard".into(),
            ));
        }
        _ => name,
    };
    entry.insert("Name".into(), Value::String(name.clone()));
    for (field, value) in defaults(&kind) {
        entry.entry(field.to_string()).or_insert_with(value);
    }
    Ok((kind, name, entry))
}

fn key(kind: &str, name: &str) -> String {
    format!("{kind}/{name}")
}

/// A stored entry with its indexes, as read back.
pub fn shown(body: &str, create_index: u64, modify_index: u64) -> Value {
    let mut entry: Map<String, Value> = serde_json::from_str(body).unwrap_or_default();
    entry.insert("CreateIndex".into(), create_index.into());
    entry.insert("ModifyIndex".into(), modify_index.into());
    Value::Object(entry)
}

/// `PUT /v1/config[?cas=N]`: `true`, or `false` when the check-and-set does not hold.
pub async fn set(
    State(state): State<AppState>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("Request decoding failed: {e}")))?;
    let (kind, name, entry) = normalize(value)?;
    let write = DocWrite {
        kind: DocKind::ConfigEntry,
        key: key(&kind, &name),
        unique_name: String::new(),
        body: Value::Object(entry).to_string(),
        cas: params.u64("cas")?,
    };
    let answer = state.write(Command::DocSet(write)).await?;
    Ok(super::bool_response(!matches!(answer, CommandResult::Bool(false))))
}

pub async fn get(
    State(state): State<AppState>,
    Path((kind, name)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    check_kind(&kind).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (index, found) =
        super::query::block_on(&state, &params, WatchKey::Tables(vec![Table::ConfigEntries]), |s| {
            let found = s
                .document(DocKind::ConfigEntry, &key(&kind, &name))
                .map(|d| shown(&d.body, d.create_index, d.modify_index));
            (s.tables_index(&[Table::ConfigEntries]), found)
        })
        .await?;
    match found {
        Some(entry) => super::query::query_response(&state, &params, index, &entry),
        None => Err(ApiError::NotFound(format!("Config entry not found for {kind:?} / {name:?}"))),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    check_kind(&kind).map_err(|e| ApiError::Internal(e.to_string()))?;
    let prefix = format!("{kind}/");
    blocking(&state, &params, WatchKey::Tables(vec![Table::ConfigEntries]), |s| {
        let entries: Vec<Value> = s
            .documents(DocKind::ConfigEntry, &prefix)
            .map(|d| shown(&d.body, d.create_index, d.modify_index))
            .collect();
        (s.tables_index(&[Table::ConfigEntries]), entries)
    })
    .await
}

/// `DELETE /v1/config/:kind/:name`: `{}`, or with `?cas=N` `true`/`false`.
pub async fn delete(
    State(state): State<AppState>,
    Path((kind, name)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    check_kind(&kind)?;
    let cas = params
        .get("cas")
        .map(|v| v.parse::<u64>().map_err(|e| ApiError::Internal(e.to_string())))
        .transpose()?;
    let cmd = Command::DocDelete { kind: DocKind::ConfigEntry, key: key(&kind, &name), cas };
    let answer = state.write(cmd).await?;
    match cas {
        None => json_response(&Value::Object(Map::new()), false),
        Some(_) => Ok(super::bool_response(!matches!(answer, CommandResult::Bool(false)))),
    }
}

pub async fn missing_name() -> ApiResult<Response> {
    Err(ApiError::NotFound("Must provide either a kind or both kind and name".into()))
}

/// Every stored entry of a kind, parsed (for the reads that follow gateway entries).
pub fn entries_of(s: &crate::catalog::CatalogState, kind: &str) -> Vec<(String, Value, u64, u64)> {
    s.documents(DocKind::ConfigEntry, &format!("{kind}/"))
        .filter_map(|d| {
            let name = d.key.split_once('/')?.1.to_string();
            Some((name, serde_json::from_str(&d.body).ok()?, d.create_index, d.modify_index))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entries_are_normalized_as_consul_stores_them() {
        let (kind, name, entry) = normalize(
            json!({"kind": "service-defaults", "name": "web", "protocol": "http", "Meta": {"a_b": "c"}}),
        )
        .expect("valid");
        assert_eq!((kind.as_str(), name.as_str()), ("service-defaults", "web"));
        assert_eq!(entry["Protocol"], "http");
        assert_eq!(entry["Meta"], json!({"a_b": "c"}), "user maps keep their keys");
        assert_eq!(entry["MeshGateway"], json!({}));
        let (_, name, _) = normalize(json!({"Kind": "proxy-defaults"})).expect("global");
        assert_eq!(name, "global");
        assert!(normalize(json!({"Kind": "proxy-defaults", "Name": "other"})).is_err());
        assert!(normalize(json!({"Kind": "nonsense", "Name": "x"})).is_err());
        assert!(normalize(json!({"Name": "x"})).is_err());
        assert!(normalize(json!({"Kind": "service-defaults"})).is_err());
    }
}
