//! The HTTP router in process, over an in-memory `Cluster` (no Raft, no sockets but a gossip
//! one on an ephemeral port): requests as Consul's clients send them, answers as they read them.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::{AppState, router};

async fn state() -> AppState {
    super::in_memory::state().await.expect("in-memory state")
}

async fn call(state: &AppState, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
    let request =
        Request::builder().method(method).uri(uri).body(Body::from(body.to_string())).expect("request");
    let response = router(state.clone(), None).oneshot(request).await.expect("answer");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn a_go_client_registration_with_nulls_is_listed_by_the_agent_and_the_catalog() {
    let state = state().await;
    let body = r#"{"ID":"","Name":"web","Tags":null,"Port":8080,"Address":"","Meta":null,
        "Weights":null,"Check":null,"Checks":null,"Proxy":null,"Connect":null,"Namespace":""}"#;
    assert_eq!(call(&state, "PUT", "/v1/agent/service/register", body).await.0, StatusCode::OK);
    let (status, services) = call(&state, "GET", "/v1/agent/services", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(services.contains(r#""Service":"web""#), "{services}");
    let (_, instances) = call(&state, "GET", "/v1/catalog/service/web", "").await;
    let instances: serde_json::Value = serde_json::from_str(&instances).expect("json");
    assert_eq!(instances[0]["ServicePort"], 8080);
    assert_eq!(instances[0]["Node"], "n1");
}

#[tokio::test]
async fn malformed_bodies_get_consuls_status_and_write_nothing() {
    let state = state().await;
    let (status, message) =
        call(&state, "PUT", "/v1/agent/service/register", r#"{"Name": "web", "Port": "x"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
    assert!(message.starts_with("Request decode failed"), "{message}");
    assert_eq!(call(&state, "GET", "/v1/agent/services", "").await.1, "{}");
}

#[tokio::test]
async fn kv_round_trip_and_another_datacenter_has_no_path() {
    let state = state().await;
    assert_eq!(call(&state, "PUT", "/v1/kv/greeting", "hello").await, (StatusCode::OK, "true".into()));
    assert_eq!(call(&state, "GET", "/v1/kv/greeting?raw", "").await, (StatusCode::OK, "hello".into()));
    let (status, message) = call(&state, "GET", "/v1/kv/greeting?dc=dc2", "").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(message.contains("No path to datacenter"), "{message}");
    assert_eq!(call(&state, "GET", "/v1/nothing/here", "").await.0, StatusCode::NOT_FOUND);
}
