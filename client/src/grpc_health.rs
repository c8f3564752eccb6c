//! The gRPC health protocol (`grpc.health.v1.Health/Check`) over HTTP/2 without TLS, spoken by
//! hand: one small request and one small answer do not need a protobuf toolchain. Used by the
//! agent's gRPC checks and the register sidecar.

use std::time::Duration;

/// Asks `address` (`host:port`) for the health of `service` ("" = the whole server) with an
/// HTTP/2 prior-knowledge client. True when SERVING; the text says what was seen.
pub async fn check(
    http2: &reqwest::Client,
    address: &str,
    service: &str,
    timeout: Duration,
) -> (bool, String) {
    let url = format!("http://{address}/grpc.health.v1.Health/Check");
    let request = http2
        .post(&url)
        .timeout(timeout)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(health_request(service));
    let what = if service.is_empty() {
        format!("gRPC health {address}")
    } else {
        format!("gRPC health {address}/{service}")
    };
    match request.send().await {
        Ok(resp) => {
            let grpc_status =
                resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_string);
            match resp.bytes().await {
                Ok(body) => match serving_status(&body) {
                    Some(1) => (true, format!("{what}: SERVING")),
                    Some(n) => (false, format!("{what}: {}", status_name(n))),
                    None => (
                        false,
                        format!(
                            "{what}: no health answer (grpc-status {})",
                            grpc_status.as_deref().unwrap_or("?")
                        ),
                    ),
                },
                Err(e) => (false, format!("{what}: {e}")),
            }
        }
        Err(e) => (false, format!("{what}: {e}")),
    }
}

/// A length-prefixed `HealthCheckRequest { service = 1 }` message.
fn health_request(service: &str) -> Vec<u8> {
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a); // field 1, length-delimited
        put_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    framed
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The `status` (field 1) of the first framed `HealthCheckResponse`; an absent field is 0
/// (UNKNOWN), as proto3 omits defaults.
fn serving_status(body: &[u8]) -> Option<u64> {
    let (&compressed, rest) = body.split_first()?;
    if compressed != 0 || rest.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let mut message = rest.get(4..4 + len)?;
    let mut status = 0;
    while !message.is_empty() {
        let (key, n) = get_varint(message)?;
        message = &message[n..];
        match key & 7 {
            0 => {
                let (v, n) = get_varint(message)?;
                message = &message[n..];
                if key >> 3 == 1 {
                    status = v;
                }
            }
            2 => {
                let (l, n) = get_varint(message)?;
                message = message.get(n + l as usize..)?;
            }
            _ => return None,
        }
    }
    Some(status)
}

fn status_name(n: u64) -> &'static str {
    match n {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unknown status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_request_frames_the_service_name() {
        assert_eq!(health_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(health_request("web"), vec![0, 0, 0, 0, 5, 0x0a, 3, b'w', b'e', b'b']);
    }

    #[test]
    fn serving_status_reads_field_one_and_defaults_to_unknown() {
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(serving_status(&[0, 0, 0, 0, 0]), Some(0));
        // An unknown length-delimited field before the status is skipped.
        assert_eq!(serving_status(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 1]), Some(1));
        assert_eq!(serving_status(&[]), None);
        assert_eq!(serving_status(&[1, 0, 0, 0, 0]), None);
        assert_eq!(serving_status(&[0, 0, 0, 0, 9, 0x08]), None);
    }
}
