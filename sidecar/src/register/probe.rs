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
        let (serving, output) =
            census_client::grpc_health::check(&self.grpc, address, service, timeout).await;
        Status::new(if serving { Health::Passing } else { Health::Critical }, output)
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

#[cfg(test)]
mod tests {
    use super::*;

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
