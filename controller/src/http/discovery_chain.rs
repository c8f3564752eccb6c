//! `/v1/discovery-chain/:service`: the compiled discovery chain of a service. census runs no
//! service mesh and does not interpret routers, splitters or resolvers, so every chain is Consul's
//! default one (a single resolver to the service in this datacenter); its protocol comes from the
//! service's `service-defaults` entry, or the request's `OverrideProtocol`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::decode::{MAX_BODY, read_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, blocking};
use crate::catalog::{DocKind, Table, WatchKey};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ChainRequest {
    #[serde(rename = "OverrideProtocol")]
    override_protocol: String,
    #[serde(rename = "OverrideConnectTimeout")]
    override_connect_timeout: String,
}

/// The trust domain census uses in SNI names (it runs no Connect CA).
const TRUST_DOMAIN: &str = "census.consul";

fn default_chain(service: &str, dc: &str, protocol: &str, connect_timeout: &str) -> Value {
    let target = format!("{service}.default.default.{dc}");
    let sni = format!("{service}.default.{dc}.internal.{TRUST_DOMAIN}");
    let node = format!("resolver:{target}");
    json!({"Chain": {
        "ServiceName": service,
        "Namespace": "default",
        "Partition": "default",
        "Datacenter": dc,
        "Default": true,
        "Protocol": protocol,
        "StartNode": node,
        "Nodes": {node.clone(): {
            "Type": "resolver",
            "Name": target,
            "Resolver": {"ConnectTimeout": connect_timeout, "Default": true, "Target": target},
        }},
        "Targets": {target.clone(): {
            "ID": target, "Service": service, "Namespace": "default", "Partition": "default",
            "Datacenter": dc, "ConnectTimeout": connect_timeout, "MeshGateway": {}, "Subset": {},
            "TransparentProxy": {}, "SNI": sni, "Name": sni,
        }},
        "AutoVirtualIPs": null,
        "ManualVirtualIPs": null,
    }})
}

pub async fn chain(
    State(state): State<AppState>,
    Path(service): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if service.is_empty() {
        return Err(ApiError::BadRequest("Missing chain name".into()));
    }
    let bytes = read_body(&headers, body, MAX_BODY, "Request body").await?;
    let request: ChainRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        ChainRequest::default()
    } else {
        super::decode::decode_json(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("Request decoding failed: {e}")))?
    };
    let dc = params.get("compile-dc").filter(|d| !d.is_empty()).unwrap_or(&state.info.datacenter).to_string();
    let timeout = if request.override_connect_timeout.is_empty() {
        "5s".to_string()
    } else {
        request.override_connect_timeout
    };
    blocking(&state, &params, WatchKey::Tables(vec![Table::ConfigEntries]), |s| {
        let configured = s
            .document(DocKind::ConfigEntry, &format!("service-defaults/{service}"))
            .and_then(|d| serde_json::from_str::<Value>(&d.body).ok())
            .and_then(|e| e.get("Protocol").and_then(Value::as_str).map(str::to_string))
            .filter(|p| !p.is_empty());
        let protocol = Some(request.override_protocol.clone()).filter(|p| !p.is_empty()).or(configured);
        let chain = default_chain(&service, &dc, protocol.as_deref().unwrap_or("tcp"), &timeout);
        (s.tables_index(&[Table::ConfigEntries]), chain)
    })
    .await
}
