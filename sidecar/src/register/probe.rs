//! The checks the register sidecar runs itself against an application: HTTP, TCP and the gRPC
//! health protocol (grpc.health.v1.Health/Check over HTTP/2 without TLS).

use std::time::Duration;

use super::instance::{Health, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// GET this URL: 2xx passing, 429 warning, anything else critical.
    Http { url: String },
    /// Connect to `host:port`.
    Tcp { address: String },
    /// gRPC health of `service` ("" = the whole server) at `host:port`.
    Grpc { address: String, service: String },
}

impl Probe {
    /// A name for the catalog's check, as Consul words its own checks.
    pub fn describe(&self) -> String {
        match self {
            Probe::Http { url } => format!("HTTP GET {url}"),
            Probe::Tcp { address } => format!("TCP {address}"),
            Probe::Grpc { address, service } if service.is_empty() => format!("gRPC {address}"),
            Probe::Grpc { address, service } => format!("gRPC {address}/{service}"),
        }
    }
}

/// Runs probes; one HTTP client (and its connection pool) for all of them.
#[derive(Clone)]
pub struct Prober {
    http: reqwest::Client,
    grpc: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build an HTTP client: {0}")]
pub struct ProberError(#[from] reqwest::Error);

impl Prober {
    pub fn new() -> Result<Self, ProberError> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(5)).build()?;
        let grpc = reqwest::Client::builder().http2_prior_knowledge().build()?;
        Ok(Prober { http, grpc })
    }

    pub async fn run(&self, probe: &Probe, timeout: Duration) -> Status {
        match probe {
            Probe::Http { url } => self.http_status(url, timeout).await,
            Probe::Tcp { address } => tcp_status(address, timeout).await,
            Probe::Grpc { address, service } => self.grpc_status(address, service, timeout).await,
        }
    }

    async fn http_status(&self, url: &str, timeout: Duration) -> Status {
        match self.http.get(url).timeout(timeout).send().await {
            Ok(resp) => {
                let code = resp.status();
                let body = resp.text().await.unwrap_or_default();
                let health = if code.is_success() {
                    Health::Passing
                } else if code.as_u16() == 429 {
                    Health::Warning
                } else {
                    Health::Critical
                };
                Status::new(health, format!("HTTP GET {url}: {code} Output: {}", cut(&body, 512)))
            }
            Err(e) => Status::new(Health::Critical, format!("HTTP GET {url}: {e}")),
        }
    }

    async fn grpc_status(&self, address: &str, service: &str, timeout: Duration) -> Status {
        let url = format!("http://{address}/grpc.health.v1.Health/Check");
        let request = self
            .grpc
            .post(&url)
            .timeout(timeout)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(health_request(service));
        let what = format!("gRPC health {address}/{service}");
        match request.send().await {
            Ok(resp) => {
                let grpc_status =
                    resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_string);
                match resp.bytes().await {
                    Ok(body) => match serving_status(&body) {
                        Some(1) => Status::new(Health::Passing, format!("{what}: SERVING")),
                        Some(n) => Status::new(Health::Critical, format!("{what}: {}", status_name(n))),
                        None => Status::new(
                            Health::Critical,
                            format!(
                                "{what}: no health answer (grpc-status {})",
                                grpc_status.as_deref().unwrap_or("?")
                            ),
                        ),
                    },
                    Err(e) => Status::new(Health::Critical, format!("{what}: {e}")),
                }
            }
            Err(e) => Status::new(Health::Critical, format!("{what}: {e}")),
        }
    }
}

async fn tcp_status(address: &str, timeout: Duration) -> Status {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => Status::new(Health::Passing, format!("TCP connect {address}: Success")),
        Ok(Err(e)) => Status::new(Health::Critical, format!("dial tcp {address}: {e}")),
        Err(_) => Status::new(Health::Critical, format!("dial tcp {address}: i/o timeout")),
    }
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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

    #[tokio::test]
    async fn tcp_probe_tells_open_from_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let open = listener.local_addr().expect("addr").to_string();
        assert_eq!(tcp_status(&open, Duration::from_secs(1)).await.health, Health::Passing);
        // A port bound but not listening refuses connections, and no other socket can take it.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let closed = socket.local_addr().expect("addr").to_string();
        let status = tcp_status(&closed, Duration::from_secs(1)).await;
        assert_eq!(status.health, Health::Critical, "{status:?}");
    }
}
