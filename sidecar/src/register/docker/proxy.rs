//! `census-sidecar docker-proxy`: the Docker socket is root on the host, and the register sidecar
//! needs only reads. This proxy forwards the read calls it uses (events, list, inspect, version,
//! ping) to the socket and answers everything else with 403, so the sidecar never holds the
//! socket itself.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("proxy server: {0}")]
    Serve(std::io::Error),
}

/// Whether `method path` is a read the register sidecar makes. The path may carry Docker's
/// `/v1.41`-style version prefix; the query string is not part of `path`.
pub fn allowed(method: &Method, path: &str) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    let path = match path.strip_prefix("/v") {
        Some(rest) => match rest.find('/') {
            Some(slash) if rest[..slash].chars().all(|c| c.is_ascii_digit() || c == '.') => &rest[slash..],
            _ => path,
        },
        None => path,
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["_ping"] | ["version"] | ["events"] => true,
        ["containers", "json"] => true,
        ["containers", id, "json"] => !id.is_empty() && !id.contains(".."),
        _ => false,
    }
}

fn forbidden(method: &Method, path: &str) -> Response {
    let body = serde_json::json!({
        "message": format!("census docker-proxy: {method} {path} is not on the read-only allow-list")
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

fn bad_gateway(message: String) -> Response {
    (StatusCode::BAD_GATEWAY, axum::Json(serde_json::json!({ "message": message }))).into_response()
}

async fn forward(State(socket): State<PathBuf>, request: Request) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    if !allowed(&method, &path) {
        tracing::warn!(%method, %path, "refused");
        return forbidden(&method, &path);
    }
    let stream = match UnixStream::connect(&socket).await {
        Ok(s) => s,
        Err(e) => return bad_gateway(format!("cannot reach {}: {e}", socket.display())),
    };
    let (mut sender, connection) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(pair) => pair,
        Err(e) => return bad_gateway(format!("Docker handshake: {e}")),
    };
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "docker connection closed");
        }
    });
    // Reads carry no body; dropping it means nothing but the allowed call reaches the engine.
    let (mut parts, _) = request.into_parts();
    parts.headers.insert(axum::http::header::HOST, axum::http::HeaderValue::from_static("docker"));
    match sender.send_request(Request::from_parts(parts, Body::empty())).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => bad_gateway(format!("Docker request: {e}")),
    }
}

/// Serves the allow-list on `listen` (`IP:PORT`), forwarding to the Unix socket `socket`.
pub async fn serve(listen: &str, socket: PathBuf) -> Result<(), ProxyError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ProxyError::Listen { addr: listen.to_string(), source })?;
    tracing::info!(listen, socket = %socket.display(), "read-only Docker proxy ready");
    let app = Router::new().fallback(forward).with_state(socket);
    axum::serve(listener, app).await.map_err(ProxyError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sidecar_makes_pass_with_or_without_a_version() {
        for p in ["/_ping", "/v1.41/version", "/events", "/v1.41/containers/json", "/containers/abc123/json"]
        {
            assert!(allowed(&Method::GET, p), "{p}");
        }
    }

    #[test]
    fn writes_and_other_reads_are_refused() {
        assert!(!allowed(&Method::POST, "/containers/create"));
        assert!(!allowed(&Method::POST, "/v1.41/containers/abc/start"));
        assert!(!allowed(&Method::DELETE, "/containers/abc"));
        assert!(!allowed(&Method::POST, "/containers/abc/exec"));
        assert!(!allowed(&Method::GET, "/containers/abc/archive"));
        assert!(!allowed(&Method::GET, "/containers/abc/logs"));
        assert!(!allowed(&Method::GET, "/secrets"));
        assert!(!allowed(&Method::GET, "/v1.41/images/json"));
        assert!(!allowed(&Method::GET, "/containers/../secrets/json"));
    }
}
