//! `/v1/coordinate/*`: network coordinates. census does not measure round-trip times yet (no
//! gossip), so a server's coordinate is the origin until a client writes one with
//! `PUT /v1/coordinate/update`; written coordinates are stored through Raft, as Consul stores
//! them, and read back everywhere.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::agent_self::origin_coordinate;
use super::decode::{MAX_BODY, decode_json, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, block_on, blocking, query_not_found, query_response};
use super::{AppState, empty_ok};
use crate::catalog::{CatalogState, Command, DocKind, DocWrite, Table, WatchKey};

/// A Vivaldi coordinate as Consul's serf writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Coordinate {
    #[serde(rename = "Vec")]
    pub vec: Vec<f64>,
    #[serde(rename = "Error")]
    pub error: f64,
    #[serde(rename = "Adjustment")]
    pub adjustment: f64,
    #[serde(rename = "Height")]
    pub height: f64,
}

/// One node's coordinate (`PUT /v1/coordinate/update` body, and a listing row).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoordinateEntry {
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Segment")]
    pub segment: String,
    #[serde(rename = "Coord")]
    pub coord: Option<Coordinate>,
}

/// Consul's `coordinate.IsValid` and dimensionality: eight finite components, finite scalars.
fn valid(c: &Coordinate) -> bool {
    c.vec.len() == 8 && c.vec.iter().chain([&c.error, &c.adjustment, &c.height]).all(|x| x.is_finite())
}

/// Every node with a coordinate: the stored ones, and the servers at the origin until they have one.
fn entries(state: &AppState, s: &CatalogState) -> Vec<Value> {
    let mut out: BTreeMap<String, Value> = state
        .gossip
        .alive_servers()
        .into_iter()
        .map(|peer| {
            (peer.name.clone(), json!({"Node": peer.name, "Segment": "", "Coord": origin_coordinate()}))
        })
        .collect();
    for doc in s.documents(DocKind::Coordinate, "") {
        if let Ok(entry) = serde_json::from_str::<Value>(&doc.body) {
            out.insert(doc.key.clone(), entry);
        }
    }
    out.into_values().collect()
}

pub async fn datacenters(State(state): State<AppState>) -> ApiResult<Response> {
    let coordinates = state.catalog.read(|s| entries(&state, s));
    super::query::json_response(
        &json!([{"Datacenter": state.info.datacenter, "AreaID": "wan", "Coordinates": coordinates}]),
        false,
    )
}

pub async fn nodes(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let segment = params.get("segment").map(str::to_string);
    blocking(&state, &params, WatchKey::Tables(vec![Table::Coordinates]), |s| {
        let rows: Vec<Value> = entries(&state, s)
            .into_iter()
            .filter(|e| segment.as_deref().is_none_or(|seg| e["Segment"] == seg))
            .collect();
        (s.tables_index(&[Table::Coordinates]), rows)
    })
    .await
}

/// An array of the node's coordinates; 404 with an empty body when it has none.
pub async fn node(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let (index, rows) = block_on(&state, &params, WatchKey::Tables(vec![Table::Coordinates]), |s| {
        let rows: Vec<Value> =
            entries(&state, s).into_iter().filter(|e| e["Node"] == name.as_str()).collect();
        (s.tables_index(&[Table::Coordinates]), rows)
    })
    .await?;
    if rows.is_empty() {
        return Ok(query_not_found(&state, &params, index));
    }
    query_response(&state, &params, index, &rows)
}

pub async fn update(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let bytes = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let entry: CoordinateEntry = decode_json(&bytes)?;
    if entry.node.is_empty() {
        return Err(ApiError::BadRequest("Must provide node".into()));
    }
    let coord = entry
        .coord
        .as_ref()
        .filter(|c| valid(c))
        .ok_or_else(|| ApiError::Internal("invalid coordinate".into()))?;
    let stored = json!({"Node": entry.node, "Segment": entry.segment, "Coord": coord});
    let write = DocWrite {
        kind: DocKind::Coordinate,
        key: entry.node.clone(),
        unique_name: String::new(),
        body: stored.to_string(),
        cas: None,
    };
    state.write(Command::DocSet(write)).await?;
    Ok(empty_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_eight_finite_dimensions_are_a_coordinate() {
        let ok = Coordinate { vec: vec![0.0; 8], error: 1.5, adjustment: 0.0, height: 1e-5 };
        assert!(valid(&ok));
        assert!(!valid(&Coordinate { vec: vec![0.0; 3], ..ok.clone() }));
        assert!(!valid(&Coordinate { error: f64::NAN, ..ok }));
    }
}
