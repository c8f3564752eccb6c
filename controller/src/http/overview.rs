//! Overview reads for the web UI, spelled as Consul's: `/v1/internal/ui/services|nodes`,
//! `/v1/operator/autopilot/health`, and the `Stats` of `/v1/agent/self`.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use census_client::overview::{AutopilotHealth, AutopilotServer, UiNode, UiService};
use census_client::types::AgentSelf;
use census_client::{format_duration, parse_duration};

use super::AppState;
use super::authz::Authz;
use super::authz_records::may_read_check;
use super::convert;
use super::error::ApiResult;
use super::query::{Params, blocking, json_response};
use crate::acl::{Access, Resource};
use crate::catalog::{Table, WatchKey};
use crate::raft::ClusterNode;
use crate::raft::node::RaftStats;

/// A server this many entries behind the leader is unhealthy (Consul's `MaxTrailingLogs`).
const MAX_TRAILING_LOGS: u64 = 250;
/// How long autopilot waits for another server's `/v1/agent/self`.
const PEER_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn ui_services(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    let dc = state.info.datacenter.clone();
    let tables = [Table::Services, Table::Checks];
    blocking(&state, &params, WatchKey::Tables(tables.to_vec()), |s| {
        let services: Vec<UiService> = s
            .service_summaries()
            .into_iter()
            .filter(|sum| authz.allows(Resource::Service, &sum.name, Access::Read))
            .map(|sum| UiService {
                kind: sum.kind,
                name: sum.name,
                datacenter: dc.clone(),
                tags: sum.tags,
                nodes: sum.nodes,
                instance_count: sum.instances,
                checks_passing: sum.checks.passing,
                checks_warning: sum.checks.warning,
                checks_critical: sum.checks.critical,
            })
            .collect();
        (s.tables_index(&tables), services)
    })
    .await
}

pub async fn ui_nodes(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    let dc = state.info.datacenter.clone();
    let tables = [Table::Nodes, Table::Services, Table::Checks];
    blocking(&state, &params, WatchKey::Tables(tables.to_vec()), |s| {
        let nodes: Vec<UiNode> = s
            .node_summaries()
            .into_iter()
            .filter(|sum| authz.allows(Resource::Node, &sum.node.name, Access::Read))
            .map(|sum| UiNode {
                id: sum.node.id.clone(),
                node: sum.node.name.clone(),
                address: sum.node.address.clone(),
                datacenter: sum.node.datacenter.clone(),
                tagged_addresses: sum.node.tagged_addresses.clone(),
                meta: sum.node.meta.clone(),
                services: sum
                    .services
                    .iter()
                    .filter(|svc| authz.allows(Resource::Service, &svc.name, Access::Read))
                    .map(|svc| convert::agent_service(svc, &dc))
                    .collect(),
                checks: sum
                    .checks
                    .iter()
                    .filter(|c| may_read_check(&authz, c))
                    .map(|c| convert::health_check(c))
                    .collect(),
            })
            .collect();
        (s.tables_index(&tables), nodes)
    })
    .await
}

/// `Stats.raft` of `/v1/agent/self`, every value a string as Consul writes them.
pub fn raft_stats_section(stats: &RaftStats) -> BTreeMap<String, String> {
    let last_contact = match stats.last_contact_ms {
        None => "never".to_string(),
        Some(0) => "0".to_string(),
        Some(ms) => format_duration(Duration::from_millis(ms)),
    };
    [
        ("state", stats.state.to_string()),
        ("term", stats.term.to_string()),
        ("last_log_index", stats.last_log_index.to_string()),
        ("applied_index", stats.applied_index.to_string()),
        ("last_contact", last_contact),
        ("num_peers", stats.num_peers.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn peer_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| reqwest::Client::builder().timeout(PEER_TIMEOUT).build().unwrap_or_default())
}

/// Another server's Raft stats, read from its HTTP API; `None` when it does not answer.
async fn remote_stats(http_addr: &str) -> Option<BTreeMap<String, String>> {
    let url = format!("http://{http_addr}/v1/agent/self");
    let response = peer_client().get(url).send().await.ok()?.error_for_status().ok()?;
    let mut info: AgentSelf = response.json().await.ok()?;
    info.stats.remove("raft")
}

/// `GET /v1/operator/autopilot/health`: every server's state, read from the server itself;
/// 429 when the cluster is not healthy, as Consul answers.
pub async fn autopilot_health(State(state): State<AppState>) -> ApiResult<Response> {
    let health = server_health(state.server()?).await;
    let mut response = json_response(&health, false)?;
    if !health.healthy {
        *response.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
    }
    Ok(response)
}

/// Every server's Raft state, read from the server itself.
pub async fn server_health(server: &ClusterNode) -> AutopilotHealth {
    let servers = server.servers();
    let leader = server.leader().map(|(id, _)| id);
    let own = raft_stats_section(&server.stats());
    // A follower that has not heard from the leader for an election timeout is about to start an
    // election: past that it is unhealthy. (Consul's fixed 200 ms assumes its slower heartbeats.)
    let contact_threshold = Duration::from_millis(server.raft.config().election_timeout_min);
    let reads = servers.iter().map(|(id, node, _)| {
        let own = (*id == server.id).then(|| own.clone());
        async move {
            match own {
                Some(stats) => Some(stats),
                None => remote_stats(&node.http_addr).await,
            }
        }
    });
    let stats = futures::future::join_all(reads).await;
    let leader_index = servers
        .iter()
        .zip(&stats)
        .find(|((id, _, _), _)| Some(*id) == leader)
        .and_then(|(_, s)| s.as_ref())
        .and_then(|s| s.get("last_log_index")?.parse::<u64>().ok())
        .unwrap_or(0);
    let mut out: Vec<AutopilotServer> = servers
        .iter()
        .zip(stats)
        .map(|((id, node, voter), stats)| {
            let answered = stats.is_some();
            let stats = stats.unwrap_or_default();
            let number = |k: &str| stats.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let contact = stats.get("last_contact").and_then(|c| parse_duration(c).ok());
            let contact_ok = contact.is_some_and(|d| d <= contact_threshold);
            let last_contact = contact.map(format_duration).unwrap_or_else(|| "never".into());
            let last_index = number("last_log_index");
            AutopilotServer {
                id: format!("{id:016x}"),
                name: node.name.clone(),
                address: node.raft_addr.clone(),
                serf_status: if answered { "alive" } else { "failed" }.into(),
                version: crate::version::CONSUL_API_VERSION.into(),
                leader: Some(*id) == leader,
                last_contact,
                last_term: number("term"),
                last_index,
                applied_index: number("applied_index"),
                healthy: answered && contact_ok && last_index + MAX_TRAILING_LOGS >= leader_index,
                voter: *voter,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let voters = out.iter().filter(|s| s.voter).count();
    let healthy_voters = out.iter().filter(|s| s.voter && s.healthy).count();
    let quorum = voters / 2 + 1;
    AutopilotHealth {
        healthy: healthy_voters == voters && leader.is_some(),
        failure_tolerance: healthy_voters.saturating_sub(quorum) as u32,
        servers: out,
    }
}
