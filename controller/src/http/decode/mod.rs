//! Request bodies: size limits and JSON decoding as Consul does it (field names match without
//! regard to case or underscores; unknown fields and `null`s are ignored, as Go's decoder does).

pub mod go_json;

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

/// A field of a JSON object: exact spelling first, then ignoring case.
pub fn json_field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Decodes a request body as Consul does (see [`go_json`]): malformed JSON and values of the
/// wrong type are a 400 `Request decode failed: ...`; unknown fields and `null`s are not.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let bad = |e: String| ApiError::BadRequest(format!("Request decode failed: {e}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    go_json::from_value(value).map_err(|e| bad(e.to_string()))
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
    fn ignores_unknown_fields_and_nulls_as_go_does() {
        let body = br#"{"ID":"web-1","Name":"web","Tags":null,"Meta":null,"Port":8080,"Bogus":{"x":1},
            "Weights":null,"Check":null,"Checks":null,"ExposedPort":0,"Namespace":"","Address":null}"#;
        let reg: AgentServiceRegistration = decode_json(body).expect("the Go client's nulls decode");
        assert_eq!((reg.id.as_str(), reg.name.as_str(), reg.port), ("web-1", "web", 8080));
        assert!(reg.tags.is_empty() && reg.meta.is_empty() && reg.check.is_none() && reg.checks.is_empty());
        assert_eq!(reg.address, "");
    }

    #[test]
    fn the_last_spelling_of_a_field_wins_and_exact_names_match_first() {
        let reg: AgentServiceRegistration = decode_json(br#"{"NAME":"a","port":1}"#).expect("decodes");
        assert_eq!((reg.name.as_str(), reg.port), ("a", 1));
    }

    #[test]
    fn wrong_types_and_bad_json_are_refused_naming_the_field() {
        let err = decode_json::<AgentServiceRegistration>(br#"{"Name":"a","Port":"80"}"#).expect_err("type");
        assert_eq!(
            err.to_string(),
            "Request decode failed: json: cannot unmarshal string into Go struct field \
             AgentServiceRegistration.Port of type uint16"
        );
        let err = decode_json::<AgentServiceRegistration>(br#"{"Name":"a","Port":80.5}"#).expect_err("float");
        assert!(err.to_string().contains("number 80.5"), "{err}");
        let err =
            decode_json::<AgentServiceRegistration>(br#"{"Name":"a","Port":70000}"#).expect_err("range");
        assert!(err.to_string().contains("number 70000"), "{err}");
        let err = decode_json::<AgentServiceRegistration>(br#"{"Name":"a","Tags":"web"}"#).expect_err("list");
        assert!(err.to_string().contains("AgentServiceRegistration.Tags of type array"), "{err}");
        let err = decode_json::<AgentServiceRegistration>(br#"{"Name":"a","Check":{"Interval":"soon"}}"#)
            .expect_err("duration");
        assert!(err.to_string().contains("Check.Interval"), "{err}");
        let err = decode_json::<AgentServiceRegistration>(b"{not json").expect_err("malformed");
        assert!(matches!(err, ApiError::BadRequest(_)));
        let err = decode_json::<AgentServiceRegistration>(b"[1]").expect_err("not an object");
        assert!(err.to_string().contains("cannot unmarshal array"), "{err}");
    }

    #[test]
    fn user_keys_of_maps_are_kept_as_sent() {
        let reg: AgentServiceRegistration =
            decode_json(br#"{"Name":"a","Meta":{"enable_tag_override":"x","k":null}}"#).expect("decodes");
        assert_eq!(reg.meta.get("enable_tag_override").map(String::as_str), Some("x"));
        assert_eq!(
            reg.meta.get("k").map(String::as_str),
            Some(""),
            "null in a map is the zero value, as in Go"
        );
    }
}
