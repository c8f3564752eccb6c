//! What runs the servers on a platform needs: readiness (`/v1/agent/ready`: a leader is known
//! and this server has applied what it had committed when it met it), metrics (Consul's JSON
//! shape, or Prometheus text with `?format=prometheus`), and the leader's hand-over before it
//! stops (`/v1/operator/raft/transfer-leader`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::query::Params;

pub async fn ready(State(state): State<AppState>) -> Response {
    if !state.cluster.known_leader() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no cluster leader\n").into_response();
    }
    if state.server.as_ref().is_some_and(|s| !s.ready_for_stale()) {
        return (StatusCode::SERVICE_UNAVAILABLE, "catching up with the leader\n").into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// (name, value, help) of every gauge.
fn gauges(state: &AppState) -> Vec<(&'static str, f64, &'static str)> {
    let counts = state.catalog.read(|s| s.record_counts());
    let count = |name: &str| counts.iter().find(|(n, _)| *n == name).map_or(0.0, |(_, c)| *c as f64);
    let members = state.gossip.members();
    let alive = members.iter().filter(|m| m.status == crate::gossip::Status::Alive).count();
    let mut gauges = vec![
        (
            "census_raft_known_leader",
            f64::from(u8::from(state.cluster.known_leader())),
            "1 while a leader is known",
        ),
        ("census_members", members.len() as f64, "agents gossip knows of"),
        ("census_members_alive", alive as f64, "agents gossip knows alive"),
    ];
    let Some(server) = &state.server else {
        // A client agent's catalog is its own services and checks.
        gauges.push(("census_agent_services", count("Services"), "services registered on this agent"));
        gauges.push(("census_agent_checks", count("Checks"), "checks registered on this agent"));
        return gauges;
    };
    let stats = server.stats();
    gauges.extend([
        ("census_raft_leader", f64::from(u8::from(server.is_leader())), "1 while this server leads"),
        ("census_raft_term", stats.term as f64, "current Raft term"),
        ("census_raft_last_log_index", stats.last_log_index as f64, "last Raft log index"),
        ("census_raft_applied_index", stats.applied_index as f64, "last applied Raft log index"),
        ("census_raft_peers", stats.num_peers as f64, "voters other than this server"),
        ("census_raft_prevotes_lost", stats.prevotes_lost as f64, "pre-votes asked for and not won"),
        (
            "census_raft_recovering",
            f64::from(u8::from(stats.recovering)),
            "1 while this server rebuilds a Raft log damaged in the middle (it does not vote meanwhile)",
        ),
        (
            "census_raft_last_contact_seconds",
            stats.last_contact_ms.map_or(f64::NAN, |ms| ms as f64 / 1000.0),
            "time since the leader was last heard from",
        ),
        ("census_catalog_nodes", count("Nodes"), "catalog nodes"),
        ("census_catalog_services", count("Services"), "service instances"),
        ("census_catalog_checks", count("Checks"), "health checks"),
        ("census_kv_keys", count("KV"), "KV keys"),
        ("census_sessions", count("Sessions"), "sessions"),
    ]);
    gauges
}

/// Prometheus text for `?format=prometheus` or a scraper's Accept header (Prometheus asks for
/// openmetrics or text/plain), Consul's JSON otherwise.
pub async fn metrics(
    State(state): State<AppState>,
    params: Params,
    headers: axum::http::HeaderMap,
) -> Response {
    let gauges = gauges(&state);
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
    let scraper = accept.contains("openmetrics") || accept.starts_with("text/plain");
    if params.get("format") == Some("prometheus") || scraper {
        let mut text = String::new();
        for (name, value, help) in gauges {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
        }
        return ([("Content-Type", "text/plain; version=0.0.4")], text).into_response();
    }
    let timestamp = epoch_seconds();
    let body = json!({
        "Timestamp": timestamp,
        "Gauges": gauges.iter().map(|(n, v, _)| json!({"Name": n.replace('_', "."), "Value": v, "Labels": {}})).collect::<Vec<_>>(),
        "Points": [], "Counters": [], "Samples": [],
    });
    axum::Json(body).into_response()
}

/// When the values were read, in seconds since the epoch.
fn epoch_seconds() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{secs}")
}

/// `?if-leader`: a follower answers at once that it has nothing to hand over.
pub async fn transfer_leader(State(state): State<AppState>, params: Params) -> ApiResult<Response> {
    let if_leader = params.flag("if-leader");
    match state.server()?.step_down().await {
        Ok(Some(target)) => {
            tracing::info!(to = target, "handed leadership over; this server no longer takes part in Raft");
            Ok(axum::Json(json!({"Success": true, "NewLeader": target.to_string()})).into_response())
        }
        Ok(None) if if_leader => {
            Ok(axum::Json(json!({"Success": true, "Skipped": "not the leader"})).into_response())
        }
        Ok(None) => {
            Err(ApiError::BadRequest("this server is not the leader; run it against the leader".into()))
        }
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}
