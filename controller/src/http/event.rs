//! User events: `PUT /v1/event/fire/:name` and `GET /v1/event/list`, as Consul answers them.
//!
//! Events spread by gossip to every agent, client or server, which keeps the last 256 in memory
//! and applies the node/service/tag filters to itself, as Consul's agents do. Delivery is best
//! effort, as gossip's is.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use base64::Engine;
use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::AppState;
use super::authz::Authz;
use super::decode::{MAX_BODY, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json_response, listing_response};
use crate::acl::{Access, Resource};

/// How many events an agent keeps, as Consul's agents do.
const KEPT: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserEvent {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    /// Base64, or null without a payload.
    #[serde(rename = "Payload")]
    pub payload: Option<String>,
    #[serde(rename = "NodeFilter")]
    pub node_filter: String,
    #[serde(rename = "ServiceFilter")]
    pub service_filter: String,
    #[serde(rename = "TagFilter")]
    pub tag_filter: String,
    #[serde(rename = "Version")]
    pub version: u32,
    #[serde(rename = "LTime")]
    pub ltime: u64,
}

/// This agent's last events, oldest first, and a Lamport clock for their order.
pub struct EventBuffer {
    events: Mutex<(VecDeque<UserEvent>, u64)>,
    changed: watch::Sender<u64>,
}

impl Default for EventBuffer {
    fn default() -> Self {
        EventBuffer { events: Mutex::new((VecDeque::new(), 0)), changed: watch::channel(0).0 }
    }
}

/// Consul's index of an event list: the newest event's UUID folded to 64 bits.
fn index_of(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let half = |range: std::ops::Range<usize>| hex.get(range).and_then(|h| u64::from_str_radix(h, 16).ok());
    match (half(0..16), half(16..32)) {
        (Some(a), Some(b)) => a ^ b,
        _ => 0,
    }
}

impl EventBuffer {
    fn add(&self, mut event: UserEvent) {
        let mut guard = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let (events, clock) = &mut *guard;
        if events.iter().any(|e| e.id == event.id) {
            return;
        }
        *clock = (*clock).max(event.ltime) + 1;
        event.ltime = *clock;
        let index = index_of(&event.id);
        events.push_back(event);
        while events.len() > KEPT {
            events.pop_front();
        }
        drop(guard);
        self.changed.send_replace(index);
    }

    fn list(&self, name: Option<&str>) -> (u64, Vec<UserEvent>) {
        let guard = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let index = guard.0.back().map_or(0, |e| index_of(&e.id)).max(1);
        let events = guard.0.iter().filter(|e| name.is_none_or(|n| e.name == n)).cloned().collect();
        (index, events)
    }
}

fn compile(pattern: &str, what: &str) -> ApiResult<Option<Regex>> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(pattern).map(Some).map_err(|e| ApiError::Internal(format!("Invalid {what} filter: {e}")))
}

/// Whether this agent is one the event's filters select.
fn selects(state: &AppState, event: &UserEvent) -> ApiResult<bool> {
    let node = compile(&event.node_filter, "node")?;
    let service = compile(&event.service_filter, "service")?;
    let tag = compile(&event.tag_filter, "tag")?;
    if node.is_some_and(|re| !re.is_match(&state.info.node_name)) {
        return Ok(false);
    }
    let Some(service) = service else { return Ok(true) };
    Ok(state.catalog.read(|s| {
        super::agent::local_services(s, &state.info.node_name).any(|svc| {
            service.is_match(&svc.name) && tag.as_ref().is_none_or(|t| svc.tags.iter().any(|x| t.is_match(x)))
        })
    }))
}

pub async fn fire(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if name.is_empty() {
        return Err(ApiError::BadRequest("Missing name".into()));
    }
    let payload = read_body(&headers, body, MAX_BODY, "Event payload").await?;
    let event = UserEvent {
        id: super::session::new_uuid(),
        name,
        payload: (!payload.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(&payload)),
        node_filter: params.get("node").unwrap_or_default().to_string(),
        service_filter: params.get("service").unwrap_or_default().to_string(),
        tag_filter: params.get("tag").unwrap_or_default().to_string(),
        version: 1,
        ltime: 0,
    };
    if !event.tag_filter.is_empty() && event.service_filter.is_empty() {
        return Err(ApiError::Internal("Cannot provide tag filter without service filter".into()));
    }
    // Listed here at once (gossip hands it back too; the buffer keeps one copy of each ID).
    if selects(&state, &event)? {
        state.events.add(event.clone());
    }
    let body = serde_json::to_vec(&event).map_err(|e| ApiError::Internal(e.to_string()))?;
    let item = crate::gossip::Item::Event { id: event.id.clone(), body };
    state.gossip.broadcast(item).await.map_err(|e| ApiError::BadRequest(e.to_string()))?;
    json_response(&event, params.pretty)
}

/// Takes the events gossip delivers (this agent's own too) into the buffer, those whose
/// filters select this agent.
pub async fn receive(state: AppState) {
    let mut events = state.gossip.events();
    loop {
        let body = match events.recv().await {
            Ok(body) => body,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "user events arrived faster than they were taken");
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let event: UserEvent = match serde_json::from_slice(&body) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable user event");
                continue;
            }
        };
        match selects(&state, &event) {
            Ok(true) => state.events.add(event),
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "user event filter"),
        }
    }
}

/// `GET /v1/event/list[?name=]`; with `?index=` it waits for an event newer than that index.
pub async fn list(State(state): State<AppState>, authz: Authz, params: Params) -> ApiResult<Response> {
    let name = params.get("name").filter(|n| !n.is_empty()).map(str::to_string);
    let deadline = tokio::time::Instant::now() + params.wait;
    let (index, events) = loop {
        let mut changed = state.events.changed.subscribe();
        let (index, events) = state.events.list(name.as_deref());
        if params.index == 0 || index != params.index || tokio::time::Instant::now() >= deadline {
            break (index, events);
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    };
    let events: Vec<_> =
        events.into_iter().filter(|e| authz.allows(Resource::Event, &e.name, Access::Read)).collect();
    let mut response = listing_response(&events, &params)?;
    response.headers_mut().insert("X-Consul-Index", HeaderValue::from(index));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_keeps_the_last_events_in_order_once_each() {
        let buffer = EventBuffer::default();
        for i in 0..300 {
            let event = UserEvent {
                id: format!("{i:08x}-0000-4000-8000-000000000000"),
                name: "e".into(),
                ..Default::default()
            };
            buffer.add(event.clone());
            buffer.add(event);
        }
        let (index, events) = buffer.list(None);
        assert_eq!(events.len(), KEPT);
        assert_eq!(events.first().map(|e| e.ltime), Some(45));
        assert!(events.windows(2).all(|w| w[0].ltime < w[1].ltime));
        assert_eq!(index, index_of(&events[KEPT - 1].id));
        assert!(buffer.list(Some("other")).1.is_empty());
    }
}
