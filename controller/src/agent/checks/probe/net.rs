//! Network probes: TCP connect, UDP datagram, HTTP/2 PING (cleartext).

use std::time::Duration;

use crate::catalog::CheckStatus;

/// Passing when a connection opens.
pub async fn tcp(address: &str, timeout: Duration) -> (CheckStatus, String) {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => (CheckStatus::Passing, format!("TCP connect {address}: Success")),
        Ok(Err(e)) => (CheckStatus::Critical, format!("dial tcp {address}: {e}")),
        Err(_) => (CheckStatus::Critical, format!("dial tcp {address}: i/o timeout")),
    }
}

/// Sends a datagram and waits for an answer, as Consul does: an answer, or silence until the
/// timeout, is passing; an error (an ICMP port unreachable read back as "connection refused")
/// is critical.
pub async fn udp(address: &str, timeout: Duration) -> (CheckStatus, String) {
    let bind = if address.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
    let socket = match tokio::net::UdpSocket::bind(bind).await {
        Ok(socket) => socket,
        Err(e) => return (CheckStatus::Critical, format!("udp {address}: {e}")),
    };
    if let Err(e) = socket.connect(address).await {
        return (CheckStatus::Critical, format!("dial udp {address}: {e}"));
    }
    if let Err(e) = socket.send(b"census udp check").await {
        return (CheckStatus::Critical, format!("write udp {address}: {e}"));
    }
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(timeout, socket.recv(&mut buf)).await {
        Ok(Err(e)) => (CheckStatus::Critical, format!("read udp {address}: {e}")),
        Ok(Ok(_)) | Err(_) => (CheckStatus::Passing, format!("UDP connect {address}: Success")),
    }
}

/// Opens an HTTP/2 connection without TLS (prior knowledge) and sends a PING.
pub async fn h2ping(address: &str, timeout: Duration) -> (CheckStatus, String) {
    let ping = async {
        let tcp =
            tokio::net::TcpStream::connect(address).await.map_err(|e| format!("dial tcp {address}: {e}"))?;
        let (_client, mut connection) =
            h2::client::handshake(tcp).await.map_err(|e| format!("HTTP2 handshake {address}: {e}"))?;
        let mut ping_pong =
            connection.ping_pong().ok_or_else(|| "HTTP2 ping is not available".to_string())?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let result =
            ping_pong.ping(h2::Ping::opaque()).await.map_err(|e| format!("HTTP2 ping {address}: {e}"));
        driver.abort();
        result
    };
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(_pong)) => (CheckStatus::Passing, format!("HTTP2 ping was successful on {address}")),
        Ok(Err(e)) => (CheckStatus::Critical, e),
        Err(_) => (CheckStatus::Critical, format!("HTTP2 ping {address}: timed out after {timeout:?}")),
    }
}
