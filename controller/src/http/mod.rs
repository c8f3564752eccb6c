//! The HTTP API on :8500, wire-compatible with Consul's (see shared/reference/consul-compat.md).

mod agent;
pub mod catalog;
pub mod convert;
pub mod decode;
pub mod error;
pub mod filter;
mod kv;
pub mod maintenance;
mod operations;
mod overview;
pub mod query;
mod session;
mod snapshot;
mod status;
mod txn;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use census_client::types::Member;

use self::error::{ApiError, ApiResult};
use crate::agent::checks::CheckRunner;
use crate::catalog::{Catalog, Command, CommandResult, NodeSpec};
use crate::raft::ClusterNode;
use crate::raft::bootstrap::Discovery;

/// Who this agent is.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub node_name: String,
    pub node_id: String,
    pub datacenter: String,
    /// The address other machines reach this agent at (no port).
    pub advertise_addr: String,
    pub enable_script_checks: bool,
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub cluster: Arc<ClusterNode>,
    pub catalog: Arc<Catalog>,
    pub info: Arc<AgentInfo>,
    pub checks: Arc<CheckRunner>,
    pub discovery: Arc<Discovery>,
    /// Notified by `PUT /v1/agent/leave`.
    pub leave: Arc<tokio::sync::Notify>,
    /// `PUT /v1/agent/reload`: asks the agent to apply its definition files again.
    pub reload: tokio::sync::mpsc::Sender<ReloadRequest>,
}

/// A reload request, answered with a summary or why nothing changed.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<String, String>>;

impl AppState {
    /// This agent's node as the catalog records it.
    pub fn self_node_spec(&self) -> NodeSpec {
        NodeSpec {
            name: self.info.node_name.clone(),
            id: self.info.node_id.clone(),
            address: self.info.advertise_addr.clone(),
            datacenter: self.info.datacenter.clone(),
            tagged_addresses: [("lan".to_string(), self.info.advertise_addr.clone())].into(),
            meta: [("consul-network-segment".to_string(), String::new())].into(),
        }
    }

    /// Writes through Raft; a command the catalog refuses is a 400.
    pub async fn write(&self, cmd: Command) -> ApiResult<CommandResult> {
        let (_, result) = self.cluster.write(cmd).await?;
        match result {
            CommandResult::Rejected(reason) => Err(ApiError::BadRequest(reason)),
            other => Ok(other),
        }
    }

    /// The servers of the Raft configuration, as `/v1/agent/members` shows them.
    pub fn members(&self) -> Vec<Member> {
        let dc = self.info.datacenter.clone();
        self.cluster
            .servers()
            .into_iter()
            .map(|(id, node, voter)| {
                let (addr, port) =
                    node.raft_addr.rsplit_once(':').unwrap_or((node.raft_addr.as_str(), "8300"));
                Member {
                    name: node.name.clone(),
                    addr: addr.to_string(),
                    port: port.parse().unwrap_or(8300),
                    tags: [
                        ("role".to_string(), "consul".to_string()),
                        ("dc".to_string(), dc.clone()),
                        ("port".to_string(), port.to_string()),
                        ("id".to_string(), format!("{id:016x}")),
                        ("voter".to_string(), if voter { "1" } else { "0" }.to_string()),
                        ("http".to_string(), node.http_addr.clone()),
                    ]
                    .into(),
                    status: 1,
                    protocol_min: 1,
                    protocol_max: 5,
                    protocol_cur: 2,
                    delegate_min: 2,
                    delegate_max: 5,
                    delegate_cur: 4,
                }
            })
            .collect()
    }
}

pub fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

pub fn json_true() -> Response {
    (StatusCode::OK, [("Content-Type", "application/json")], "true").into_response()
}

async fn not_found() -> Response {
    ApiError::NotFound("404 page not found".into()).into_response()
}

async fn default_acl_header(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(req).await;
    response.headers_mut().insert("X-Consul-Default-ACL-Policy", HeaderValue::from_static("allow"));
    response
}

/// The API, and the web UI when `ui` says where its files are.
pub fn router(state: AppState, ui: Option<ui::UiSource>) -> Router {
    let api = Router::new()
        .route("/v1/agent/service/register", put(agent::service_register))
        .route("/v1/agent/service/deregister/{id}", put(agent::service_deregister))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/service/{id}", get(agent::service))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/agent/check/register", put(agent::check_register))
        .route("/v1/agent/check/deregister/{id}", put(agent::check_deregister))
        .route("/v1/agent/check/update/{id}", put(agent::check_update))
        .route("/v1/agent/check/{verb}/{id}", put(agent::check_ttl))
        .route("/v1/agent/members", get(agent::members))
        .route("/v1/agent/self", get(agent::self_info))
        .route("/v1/agent/join/{addr}", put(agent::join))
        .route("/v1/agent/leave", put(agent::leave))
        .route("/v1/agent/reload", put(agent::reload))
        .route("/v1/agent/maintenance", put(maintenance::node))
        .route("/v1/agent/service/maintenance/{id}", put(maintenance::service))
        .route("/v1/catalog/register", put(catalog::register))
        .route("/v1/catalog/deregister", put(catalog::deregister))
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{name}", get(catalog::service))
        .route("/v1/catalog/node/{node}", get(catalog::node))
        .route("/v1/health/node/{node}", get(catalog::health_node))
        .route("/v1/health/checks/{service}", get(catalog::health_checks))
        .route("/v1/health/service/{service}", get(catalog::health_service))
        .route("/v1/health/state/{state}", get(catalog::health_state))
        .route("/v1/kv", get(kv::get_root).delete(kv::delete_root))
        .route("/v1/kv/", get(kv::get_root).delete(kv::delete_root))
        .route("/v1/kv/{*key}", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/v1/session/create", put(session::create))
        .route("/v1/session/destroy/{id}", put(session::destroy))
        .route("/v1/session/renew/{id}", put(session::renew))
        .route("/v1/session/info/{id}", get(session::info))
        .route("/v1/session/node/{node}", get(session::node))
        .route("/v1/session/list", get(session::list))
        .route("/v1/txn", put(txn::txn))
        .route("/v1/snapshot", get(snapshot::save).put(snapshot::restore))
        .route("/v1/status/leader", get(status::leader))
        .route("/v1/status/peers", get(status::peers))
        .route("/v1/operator/raft/configuration", get(status::raft_configuration))
        .route("/v1/operator/raft/peer", delete(status::remove_peer))
        .route("/v1/operator/autopilot/health", get(overview::autopilot_health))
        .route(
            "/v1/operator/raft/transfer-leader",
            post(operations::transfer_leader).put(operations::transfer_leader),
        )
        .route("/v1/agent/ready", get(operations::ready))
        .route("/v1/agent/metrics", get(operations::metrics))
        .route("/v1/internal/ui/services", get(overview::ui_services))
        .route("/v1/internal/ui/nodes", get(overview::ui_nodes))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(default_acl_header))
        .with_state(state);
    match ui {
        Some(source) => api.merge(ui::router(source)),
        None => api,
    }
}
