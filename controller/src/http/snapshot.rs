//! `GET /v1/snapshot` (save) and `PUT /v1/snapshot` (restore), as Consul's: a gzipped tar with
//! SHA-256 sums, `X-Consul-Index` = the index it was taken at.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::decode::read_body;
use super::error::{ApiError, ApiResult};
use super::query::{Params, add_query_headers};
use super::{AppState, empty_ok};
use crate::catalog::{CatalogState, Command, CommandResult, archive};

/// The largest archive a restore accepts.
pub const MAX_SNAPSHOT: usize = 1024 * 1024 * 1024;
/// Archive bytes per log entry of a restore: well under what one Raft append carries in time.
const CHUNK: usize = 256 * 1024;

pub async fn save(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    state.cluster.read_barrier(params.mode).await?;
    let catalog = state.catalog.read(CatalogState::clone);
    let index = catalog.client_index();
    let term = state.server()?.stats().term;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let id = format!("{term}-{index}-{millis}");
    let bytes = tokio::task::spawn_blocking(move || archive::write(catalog, &id, index, term))
        .await
        .map_err(|e| ApiError::Internal(format!("snapshot: {e}")))?
        .map_err(|e| ApiError::Internal(format!("snapshot: {e}")))?;
    let mut response = Body::from(bytes).into_response();
    response.headers_mut().insert("Content-Type", HeaderValue::from_static("application/x-gzip"));
    add_query_headers(response.headers_mut(), &state, &params, index);
    Ok(response)
}

pub async fn restore(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let bytes = read_body(&headers, body, MAX_SNAPSHOT, "Snapshot").await?;
    // Refuse a damaged or foreign archive here, with a 400, before anything goes to the log.
    let checked = bytes.clone();
    tokio::task::spawn_blocking(move || archive::read(&checked).map(|_| ()))
        .await
        .map_err(|e| ApiError::Internal(format!("snapshot: {e}")))?
        .map_err(|e| ApiError::BadRequest(format!("Snapshot could not be restored: {e}")))?;
    let id = format!("{:016x}", rand::random::<u64>());
    for (n, data) in bytes.chunks(CHUNK).enumerate() {
        let offset = (n * CHUNK) as u64;
        let cmd = Command::RestoreChunk { id: id.clone(), offset, data: data.to_vec() };
        accepted(state.cluster.write(cmd).await?.1)?;
    }
    accepted(state.cluster.write(Command::RestoreCommit { id }).await?.1)?;
    Ok(empty_ok())
}

fn accepted(result: CommandResult) -> ApiResult<()> {
    match result {
        CommandResult::Rejected(why) => Err(ApiError::Internal(format!("Snapshot restore failed: {why}"))),
        _ => Ok(()),
    }
}
