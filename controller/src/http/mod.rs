//! The HTTP API on :8500, wire-compatible with Consul's (see shared/reference/consul-compat.md).

mod acl;
/// What the leader needs to create the ACL system's built-in records.
pub mod acl_builtins {
    pub use super::acl::management_token;
    pub use super::acl::new_id;
    pub use super::acl::policies::global_management;
}
pub mod agent;
mod agent_health;
mod agent_host;
mod agent_self;
pub mod authz;
pub mod authz_records;
pub mod catalog;
mod config_entry;
mod connect;
pub mod convert;
mod coordinate;
pub mod decode;
mod discovery_chain;
pub mod error;
pub mod event;
pub mod filter;
mod forward;
mod health;
pub mod in_memory;
mod keyring;
mod kv;
pub mod maintenance;
mod operations;
mod operator;
pub use operator::autopilot_config;
mod overview;
mod prepared_query;
pub mod query;
pub mod registration;
mod selection;
pub mod serve;
mod session;
pub mod sidecar;
mod snapshot;
mod status;
mod txn;
pub mod ui;

#[cfg(test)]
mod router_tests;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use census_client::types::Member;

use self::error::{ApiError, ApiResult};
use crate::agent::checks::CheckRunner;
use crate::catalog::{Catalog, Command, CommandResult, NodeSpec};
use crate::client_agent::servers::ServerPool;
use crate::cluster::Cluster;
use crate::gossip::Gossip;
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
    /// `-data-dir` (`None` for `-dev`): where an operator leaves `acl-bootstrap-reset`.
    pub data_dir: Option<std::path::PathBuf>,
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The cluster as this agent reaches it (Raft on a server, the agent's own state on a client).
    pub cluster: Arc<dyn Cluster>,
    /// The Raft member, on a server.
    pub server: Option<Arc<ClusterNode>>,
    /// The servers a client agent forwards to (`None` on a server).
    pub servers: Option<Arc<ServerPool>>,
    pub gossip: Arc<Gossip>,
    pub catalog: Arc<Catalog>,
    pub info: Arc<AgentInfo>,
    pub checks: Arc<CheckRunner>,
    pub discovery: Arc<Discovery>,
    /// Notified by `PUT /v1/agent/leave`.
    pub leave: Arc<tokio::sync::Notify>,
    /// `PUT /v1/agent/reload`: asks the agent to apply its definition files again.
    pub reload: tokio::sync::mpsc::Sender<ReloadRequest>,
    /// The user events this agent received (`/v1/event/*`).
    pub events: Arc<event::EventBuffer>,
    /// ACL settings, the agent's tokens, token resolution.
    pub acl: Arc<crate::acl::Acl>,
}

/// A reload request, answered with a summary or why nothing changed.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<String, String>>;

impl AppState {
    /// This agent's node as the catalog records it.
    pub fn self_node_spec(&self) -> NodeSpec {
        AppState::node_spec_of(&self.info)
    }

    /// An agent's node as the catalog records it.
    pub fn node_spec_of(info: &AgentInfo) -> NodeSpec {
        NodeSpec {
            name: info.node_name.clone(),
            id: info.node_id.clone(),
            address: info.advertise_addr.clone(),
            datacenter: info.datacenter.clone(),
            tagged_addresses: [("lan".to_string(), info.advertise_addr.clone())].into(),
            meta: [
                ("consul-network-segment".to_string(), String::new()),
                ("consul-version".to_string(), crate::version::CONSUL_API_VERSION.to_string()),
                ("census-version".to_string(), crate::version::CENSUS_VERSION.to_string()),
            ]
            .into(),
            locality: None,
        }
    }

    /// Writes through Raft; a command the catalog refuses is a 400.
    pub async fn write(&self, cmd: Command) -> ApiResult<CommandResult> {
        refused_is_bad_request(self.cluster.write(cmd).await?.1)
    }

    /// Writes to the cluster's catalog itself, even from a client agent (whose `write` goes to
    /// its own state; there the servers check `cmd` against `token`).
    pub async fn write_to_catalog(&self, cmd: Command, token: String) -> ApiResult<CommandResult> {
        match &self.servers {
            Some(pool) => {
                let write = crate::client_agent::servers::AgentWrite::one(token, cmd);
                let answer = pool.write(&write).await?;
                if let Some((_, why)) = answer.refused.into_iter().next() {
                    return Err(ApiError::PermissionDenied(why));
                }
                refused_is_bad_request(answer.result)
            }
            None => self.write(cmd).await,
        }
    }

    /// The Raft member this handler needs: only servers answer it (a client agent forwards such
    /// requests, so this refusal is not reached through its router).
    pub fn server(&self) -> ApiResult<&Arc<ClusterNode>> {
        self.server.as_ref().ok_or_else(|| ApiError::Internal("census: this agent is not a server".into()))
    }

    /// Every agent gossip knows of, as `/v1/agent/members` shows them.
    pub fn members(&self) -> Vec<Member> {
        let voters: std::collections::BTreeSet<String> = self
            .server
            .as_ref()
            .map(|s| s.servers().into_iter().filter(|(_, _, v)| *v).map(|(_, n, _)| n.name).collect())
            .unwrap_or_default();
        self.gossip
            .members()
            .into_iter()
            .map(|m| {
                let mut tags = m.peer.tags.clone();
                if m.peer.is_server() {
                    let voter = voters.contains(&m.peer.name) || self.server.is_none();
                    tags.insert("voter".into(), if voter { "1" } else { "0" }.into());
                }
                Member {
                    name: m.peer.name.clone(),
                    addr: m.peer.addr.ip().to_string(),
                    port: m.peer.addr.port(),
                    tags,
                    status: m.status.code(),
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

/// A command the catalog refuses is a 400 with its reason.
fn refused_is_bad_request(result: CommandResult) -> ApiResult<CommandResult> {
    match result {
        CommandResult::Rejected(reason) => Err(ApiError::BadRequest(reason)),
        other => Ok(other),
    }
}

pub fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

pub fn json_true() -> Response {
    bool_response(true)
}

/// `true` or `false` as a JSON body (KV writes, CAS writes).
pub fn bool_response(ok: bool) -> Response {
    (StatusCode::OK, [("Content-Type", "application/json")], if ok { "true" } else { "false" })
        .into_response()
}

async fn not_found() -> Response {
    ApiError::NotFound("404 page not found".into()).into_response()
}

/// `?dc=` naming another datacenter: Consul forwards such requests over the WAN; census knows one
/// datacenter, so it answers as Consul does when it has no route there. Agent endpoints are
/// local and ignore `dc`, as Consul's do.
async fn datacenter_route(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Only `dc` is read here: the handler parses (and checks) the rest of the query itself.
    let dc = req
        .uri()
        .query()
        .filter(|_| !req.uri().path().starts_with("/v1/agent/"))
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "dc").map(|(_, v)| v));
    match dc {
        Some(dc) if !dc.is_empty() && dc != state.info.datacenter => {
            ApiError::UnknownDatacenter(dc).into_response()
        }
        _ => next.run(req).await,
    }
}

async fn default_acl_header(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(req).await;
    let deny = state.acl.enabled() && state.acl.config.default_policy == crate::acl::DefaultPolicy::Deny;
    let policy = if deny { "deny" } else { "allow" };
    response.headers_mut().insert("X-Consul-Default-ACL-Policy", HeaderValue::from_static(policy));
    response
}

/// The API, and the web UI when `ui` says where its files are. A server answers everything; a
/// client agent answers its agent endpoints and forwards the rest to a server.
pub fn router(state: AppState, ui: Option<ui::UiSource>) -> Router {
    let client = state.servers.is_some();
    let routes = if client { agent_routes() } else { agent_routes().merge(cluster_routes()) };
    // Every route answers only after its ACL check (`authz::need`); what a client agent
    // forwards is checked by the server that answers it.
    let routes = routes.route_layer(axum::middleware::from_fn_with_state(state.clone(), authz::authorize));
    let api = if client { routes.fallback(forward::to_server) } else { routes.fallback(not_found) };
    let api = api
        .layer(axum::middleware::from_fn_with_state(state.clone(), datacenter_route))
        .layer(axum::middleware::from_fn_with_state(state.clone(), default_acl_header))
        .with_state(state);
    match ui {
        Some(source) => api.merge(ui::router(source)),
        None => api,
    }
}

/// What every agent answers itself: its own services and checks, membership, events, its
/// configuration and process.
fn agent_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agent/service/register", put(agent::service_register))
        .route("/v1/agent/service/deregister/{id}", put(agent::service_deregister))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/service/{id}", get(agent_health::service))
        .route("/v1/agent/health/service/id/{id}", get(agent_health::health_by_id))
        .route("/v1/agent/health/service/name/{name}", get(agent_health::health_by_name))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/agent/check/register", put(agent::check_register))
        .route("/v1/agent/check/deregister/{id}", put(agent::check_deregister))
        .route("/v1/agent/check/update/{id}", put(agent::check_update))
        .route("/v1/agent/check/{verb}/{id}", put(agent::check_ttl))
        .route("/v1/agent/members", get(agent_self::members))
        .route("/v1/agent/self", get(agent_self::self_info))
        .route("/v1/agent/version", get(agent_self::version))
        .route("/v1/agent/monitor", get(agent_self::monitor))
        .route("/v1/agent/host", get(agent_host::host_info))
        .route("/v1/agent/token/{kind}", put(agent_self::token))
        .route("/v1/agent/force-leave/{node}", put(agent_self::force_leave))
        .route(
            "/v1/operator/keyring",
            get(keyring::list).post(keyring::install).put(keyring::use_key).delete(keyring::remove),
        )
        .route("/v1/agent/join/{addr}", put(agent::join))
        .route("/v1/agent/leave", put(agent::leave))
        .route("/v1/agent/reload", put(agent::reload))
        .route("/v1/agent/maintenance", put(maintenance::node))
        .route("/v1/agent/service/maintenance/{id}", put(maintenance::service))
        .route("/v1/event/fire/{name}", put(event::fire))
        .route("/v1/event/list", get(event::list))
        .route("/v1/agent/ready", get(operations::ready))
        .route("/v1/agent/metrics", get(operations::metrics))
}

/// What only servers answer (a client agent forwards these): the catalog, health, KV, sessions,
/// transactions, snapshots, Raft and autopilot.
fn cluster_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/catalog/register", put(catalog::register))
        .route("/v1/catalog/deregister", put(catalog::deregister))
        .route("/v1/catalog/datacenters", get(catalog::datacenters))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/{name}", get(catalog::service))
        .route("/v1/catalog/node/{node}", get(catalog::node))
        .route("/v1/catalog/connect/{service}", get(connect::catalog_connect))
        .route("/v1/catalog/gateway-services/{gateway}", get(connect::gateway_services))
        .route("/v1/health/node/{node}", get(health::health_node))
        .route("/v1/health/checks/{service}", get(health::health_checks))
        .route("/v1/health/service/{service}", get(health::health_service))
        .route("/v1/health/state/{state}", get(health::health_state))
        .route("/v1/health/connect/{service}", get(connect::health_connect))
        .route("/v1/health/ingress/{service}", get(connect::health_ingress))
        .route("/v1/coordinate/datacenters", get(coordinate::datacenters))
        .route("/v1/coordinate/nodes", get(coordinate::nodes))
        .route("/v1/coordinate/node/{node}", get(coordinate::node))
        .route("/v1/coordinate/update", put(coordinate::update))
        .route("/v1/discovery-chain/{service}", get(discovery_chain::chain).post(discovery_chain::chain))
        .route("/v1/query", get(prepared_query::list).post(prepared_query::create))
        .route(
            "/v1/query/{id}",
            get(prepared_query::get).put(prepared_query::update).delete(prepared_query::delete),
        )
        .route("/v1/query/{id}/execute", get(prepared_query::execute))
        .route("/v1/query/{id}/explain", get(prepared_query::explain))
        .route(
            "/v1/operator/autopilot/configuration",
            get(operator::get_configuration).put(operator::set_configuration),
        )
        .route("/v1/operator/autopilot/state", get(operator::state))
        .route("/v1/operator/usage", get(operator::operator_usage))
        .route("/v1/config", put(config_entry::set))
        .route("/v1/config/", get(config_entry::missing_name))
        .route("/v1/config/{kind}", get(config_entry::list))
        .route("/v1/config/{kind}/{name}", get(config_entry::get).delete(config_entry::delete))
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
        .route("/v1/internal/ui/services", get(overview::ui_services))
        .route("/v1/internal/ui/nodes", get(overview::ui_nodes))
        .merge(acl::routes())
}
