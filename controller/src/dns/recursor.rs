//! Passing queries for names outside census' zones to the configured recursors.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::config::{DnsConfig, RecursorStrategy};
use super::handler::Transport;

/// Asks the recursors in turn and returns the first answer; SERVFAIL when none answers in time.
pub async fn forward(packet: &[u8], config: &DnsConfig, transport: Transport) -> Vec<u8> {
    let n = config.recursors.len();
    let start = match config.recursor_strategy {
        RecursorStrategy::Sequential => 0,
        RecursorStrategy::Random if n > 0 => rand::thread_rng().gen_range(0..n),
        RecursorStrategy::Random => 0,
    };
    for i in 0..n {
        let upstream = config.recursors[(start + i) % n];
        match ask(upstream, packet, transport, config.recursor_timeout).await {
            Ok(answer) => return answer,
            Err(e) => tracing::debug!(%upstream, error = %e, "recursor failed"),
        }
    }
    server_failure(packet)
}

async fn ask(
    upstream: SocketAddr,
    packet: &[u8],
    transport: Transport,
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let answer = tokio::time::timeout(timeout, ask_udp(upstream, packet)).await.map_err(timed_out)??;
    let truncated = answer.get(2).is_some_and(|flags| flags & 0x02 != 0);
    if truncated && transport == Transport::Tcp {
        return tokio::time::timeout(timeout, ask_tcp(upstream, packet)).await.map_err(timed_out)?;
    }
    Ok(answer)
}

fn timed_out(_: tokio::time::error::Elapsed) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "recursor timed out")
}

async fn ask_udp(upstream: SocketAddr, packet: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(packet).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Only the answer to this request (same ID) counts; anything else on the socket is ignored.
        if n >= 2 && packet.len() >= 2 && buf[..2] == packet[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn ask_tcp(upstream: SocketAddr, packet: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(packet.len()).map_err(|_| std::io::Error::other("request too large"))?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(packet).await?;
    let len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

fn server_failure(packet: &[u8]) -> Vec<u8> {
    match Message::from_vec(packet) {
        Ok(request) => {
            let mut response = Message::error_msg(request.id(), request.op_code(), ResponseCode::ServFail);
            response.add_queries(request.queries().iter().cloned());
            response.set_recursion_desired(request.recursion_desired()).set_recursion_available(true);
            response.to_vec().unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}
