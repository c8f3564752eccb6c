//! Request bodies: size limits and JSON decoding as Consul does it (field names match without
//! regard to case or underscores; unknown fields are refused with 400).

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

/// Consul's default cap on a KV value and on a request body.
pub const MAX_BODY: usize = 512 * 1024;

/// Reads a body up to `limit` bytes, also when it is sent chunked without a length.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let too_large = |size: Option<u64>| match size {
        Some(n) => ApiError::TooLarge(format!("{what} is too large ({n} > {limit} bytes)")),
        None => ApiError::TooLarge(format!("{what} is too large (more than {limit} bytes)")),
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > limit as u64
    {
        return Err(too_large(Some(n)));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
            too_large(None)
        } else {
            ApiError::BadRequest(format!("Request body could not be read: {e}"))
        }
    })
}

/// Every field name the registration bodies know, canonical spelling. Fields Consul accepts but
/// census does not use yet are listed too, so real clients' bodies are not refused.
const FIELDS: &[&str] = &[
    "ID",
    "Name",
    "Tags",
    "Address",
    "TaggedAddresses",
    "Meta",
    "Port",
    "Kind",
    "EnableTagOverride",
    "Weights",
    "Passing",
    "Warning",
    "Check",
    "Checks",
    "CheckID",
    "Interval",
    "Timeout",
    "TTL",
    "HTTP",
    "TCP",
    "GRPC",
    "GRPCUseTLS",
    "Method",
    "Header",
    "Body",
    "Notes",
    "Status",
    "Output",
    "ServiceID",
    "ServiceName",
    "ServiceTags",
    "DeregisterCriticalServiceAfter",
    "TLSSkipVerify",
    "TLSServerName",
    "Args",
    "ScriptArgs",
    "Script",
    "OutputMaxSize",
    "SuccessBeforePassing",
    "FailuresBeforeWarning",
    "FailuresBeforeCritical",
    "Node",
    "Datacenter",
    "NodeMeta",
    "Service",
    "SkipNodeUpdate",
    "Proxy",
    "Connect",
    "Namespace",
    "Partition",
    "SocketPath",
    "Locality",
    "Token",
    "AliasNode",
    "AliasService",
    "DockerContainerID",
    "Shell",
    "H2PING",
    "H2PingUseTLS",
    "UDP",
    "OSService",
    "Definition",
    "Type",
    "DisableRedirects",
    "CreateIndex",
    "ModifyIndex",
    "Peer",
    "PeerName",
    "RaftIndex",
    "EnterpriseMeta",
    "LockDelay",
    "Behavior",
    "NodeChecks",
    "ServiceChecks",
    "Session",
];

/// Fields whose value is a map with user keys, or an object census passes over whole.
const OPAQUE: &[&str] = &[
    "Meta",
    "NodeMeta",
    "Header",
    "Proxy",
    "Connect",
    "Locality",
    "Definition",
    "EnterpriseMeta",
    "TaggedAddresses",
];

fn fold(name: &str) -> String {
    name.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

fn canonical(name: &str) -> Option<&'static str> {
    let folded = fold(name);
    FIELDS.iter().copied().find(|f| fold(f) == folded)
}

/// Renames keys to their canonical spelling in place; refuses unknown ones.
fn canonicalize(value: &mut Value) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            for (key, mut child) in entries {
                let name = canonical(&key).ok_or_else(|| format!("unknown field \"{key}\""))?;
                if name == "TaggedAddresses" {
                    // lan/wan keys are the user's; their {Address, Port} objects are ours.
                    if let Value::Object(addrs) = &mut child {
                        for addr in addrs.values_mut() {
                            canonicalize(addr)?;
                        }
                    }
                } else if !OPAQUE.contains(&name) {
                    canonicalize(&mut child)?;
                }
                map.insert(name.to_string(), child);
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(canonicalize),
        _ => Ok(()),
    }
}

/// Decodes a registration-style body.
/// A field of a JSON object: exact spelling first, then ignoring case.
pub fn json_field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let bad = |e: String| ApiError::BadRequest(format!("Request decode failed: {e}"));
    let mut value: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    canonicalize(&mut value).map_err(bad)?;
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use census_client::types::AgentServiceRegistration;

    use super::*;

    #[test]
    fn accepts_lowercase_and_snake_case_fields() {
        let body = br#"{"name":"nginx","port":8080,"tags":["web"],"enable_tag_override":true,
            "meta":{"Some_Key":"v"},"checks":[{"http":"http://127.0.0.1:8080/","interval":"5s"}]}"#;
        let reg: AgentServiceRegistration = decode_json(body).expect("seed body decodes");
        assert_eq!(reg.name, "nginx");
        assert!(reg.enable_tag_override);
        assert_eq!(reg.meta.get("Some_Key").map(String::as_str), Some("v"), "meta keys are kept as sent");
        assert_eq!(reg.checks[0].http, "http://127.0.0.1:8080/");
    }

    #[test]
    fn refuses_unknown_fields_and_bad_json() {
        let err = decode_json::<AgentServiceRegistration>(br#"{"Name":"a","Bogus":1}"#).expect_err("unknown");
        assert!(err.to_string().contains("Bogus"), "{err}");
        let err = decode_json::<AgentServiceRegistration>(b"{not json").expect_err("malformed");
        assert!(matches!(err, ApiError::BadRequest(_)));
    }
}
