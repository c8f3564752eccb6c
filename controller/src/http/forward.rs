//! A client agent forwards every request it does not answer itself to a server, over pooled,
//! multiplexed HTTP/2 connections, and tries another server when one cannot be reached (reads
//! also when one dies before it answers). Blocking
//! queries are held by the server; responses (snapshots too) stream through.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::decode::{MAX_BODY, read_body};
use super::error::ApiError;
use super::snapshot::MAX_SNAPSHOT;

/// Headers that belong to one connection, not to the request.
const HOP_BY_HOP: [HeaderName; 5] =
    [header::CONNECTION, header::HOST, header::TRANSFER_ENCODING, header::TE, header::UPGRADE];

pub async fn to_server(State(state): State<AppState>, req: Request) -> Response {
    let Some(pool) = state.servers.clone() else {
        return ApiError::NotFound("404 page not found".into()).into_response();
    };
    let (parts, body) = req.into_parts();
    // The server would refuse more than this anyway; it is not worth holding here.
    let limit = if parts.uri.path() == "/v1/snapshot" { MAX_SNAPSHOT } else { MAX_BODY };
    let bytes = match read_body(&parts.headers, body, limit, "Request body").await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let bytes = if parts.method == Method::PUT && parts.uri.path() == "/v1/session/create" {
        session_on_this_node(bytes, &state.info.node_name)
    } else {
        bytes
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // As Consul's agent retries: a read on any failure to get an answer (the server died with the
    // request on its connection), a write only when it never reached a server.
    let read = parts.method == Method::GET || parts.method == Method::HEAD;
    for server in pool.servers() {
        if server.http_addr.is_empty() {
            continue;
        }
        let mut request = pool
            .http()
            .request(parts.method.clone(), format!("http://{}{path}", server.http_addr))
            .body(bytes.clone());
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(name) && name != header::CONTENT_LENGTH {
                request = request.header(name, value);
            }
        }
        // A request without a token acts as this agent's default token, as Consul's agent
        // fills it in before it forwards.
        let default = state.acl.default_token();
        if state.acl.enabled()
            && !default.is_empty()
            && super::authz::request_token(&parts.headers, parts.uri.query()).is_empty()
        {
            request = request.header("X-Consul-Token", default);
        }
        match request.send().await {
            Ok(answer) => return relay(answer),
            Err(e) if e.is_connect() || read => {
                tracing::debug!(server = %server.name, error = %e, "server unreachable; trying another");
                pool.failed(&server.name);
            }
            Err(e) => return ApiError::Internal(format!("rpc error making call: {e}")).into_response(),
        }
    }
    ApiError::Internal("No known Consul servers".into()).into_response()
}

fn relay(answer: reqwest::Response) -> Response {
    let status = answer.status();
    let mut headers = answer.headers().clone();
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A session created through an agent belongs to that agent's node unless the body names one,
/// as Consul's agent fills in its own node before forwarding.
fn session_on_this_node(body: axum::body::Bytes, node: &str) -> axum::body::Bytes {
    let mut value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            // The server answers malformed bodies with Consul's message.
            Err(_) => return body,
        }
    };
    let Some(fields) = value.as_object_mut() else { return body };
    let named = fields
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("node") && v.as_str().is_some_and(|n| !n.is_empty()));
    if !named {
        fields.retain(|k, _| !k.eq_ignore_ascii_case("node"));
        fields.insert("Node".into(), node.into());
    }
    serde_json::to_vec(&value).map(Into::into).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_without_a_node_is_created_on_this_agent_node() {
        let named = |body: &str| -> serde_json::Value {
            serde_json::from_slice(&session_on_this_node(body.as_bytes().to_vec().into(), "c1"))
                .expect("json")
        };
        assert_eq!(named("")["Node"], "c1");
        assert_eq!(named(r#"{"TTL":"10s","node":null}"#)["Node"], "c1");
        assert_eq!(named(r#"{"TTL":"10s"}"#)["TTL"], "10s");
        assert_eq!(named(r#"{"Node":"other"}"#)["Node"], "other");
        assert_eq!(&session_on_this_node("{bad".as_bytes().to_vec().into(), "c1")[..], b"{bad");
    }
}
