//! The DNS sockets: UDP workers sharing one socket, and a TCP listener with length-prefixed messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::DnsError;
use super::handler::{Outcome, Responder, Transport};
use super::recursor;

/// A TCP connection may stay idle this long between requests (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The bound sockets of the DNS interface.
pub struct DnsListeners {
    pub udp: std::net::UdpSocket,
    pub tcp: TcpListener,
}

impl DnsListeners {
    /// Binds UDP and TCP on the same address; either failing is an error.
    pub async fn bind(addr: SocketAddr) -> Result<DnsListeners, DnsError> {
        let listen = |source| DnsError::Listen { addr, source };
        let udp = std::net::UdpSocket::bind(addr).map_err(listen)?;
        let tcp = TcpListener::bind(addr).await.map_err(listen)?;
        Ok(DnsListeners { udp, tcp })
    }

    /// Serves until the process ends. UDP is served by blocking OS threads, one per core, woken by
    /// the kernel directly: measured at half the per-query latency of tokio tasks on one socket.
    pub fn spawn(self, responder: Arc<Responder>) -> Result<(), DnsError> {
        let addr = self.udp.local_addr().map_err(|source| DnsError::Serve { source })?;
        let socket = self.udp;
        let runtime = tokio::runtime::Handle::current();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..workers {
            let socket = socket.try_clone().map_err(|source| DnsError::Serve { source })?;
            let (responder, runtime) = (responder.clone(), runtime.clone());
            std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || serve_udp(socket, responder, runtime))
                .map_err(|source| DnsError::Serve { source })?;
        }
        tracing::debug!(%addr, workers, "dns udp serving");
        tokio::spawn(serve_tcp(self.tcp, responder));
        Ok(())
    }
}

fn serve_udp(socket: std::net::UdpSocket, responder: Arc<Responder>, runtime: tokio::runtime::Handle) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                tracing::debug!(error = %e, "dns udp receive failed");
                continue;
            }
        };
        let packet = &buf[..n];
        match responder.respond(packet, Transport::Udp) {
            Outcome::Reply(bytes) => {
                if let Err(e) = socket.send_to(&bytes, peer) {
                    tracing::debug!(%peer, error = %e, "dns udp send failed");
                }
            }
            Outcome::Forward => {
                let Ok(reply_socket) = socket.try_clone() else { continue };
                let (responder, packet) = (responder.clone(), packet.to_vec());
                runtime.spawn(async move {
                    let answer = recursor::forward(&packet, responder.config(), Transport::Udp).await;
                    if !answer.is_empty() {
                        let _ = reply_socket.send_to(&answer, peer);
                    }
                });
            }
            Outcome::Ask(pending) => {
                let Ok(reply_socket) = socket.try_clone() else { continue };
                let responder = responder.clone();
                runtime.spawn(async move {
                    let answer = responder.answer(pending, Transport::Udp).await;
                    if !answer.is_empty() {
                        let _ = reply_socket.send_to(&answer, peer);
                    }
                });
            }
            Outcome::Drop => {}
        }
    }
}

async fn serve_tcp(listener: TcpListener, responder: Arc<Responder>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let responder = responder.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(stream, &responder).await {
                        tracing::debug!(%peer, error = %e, "dns tcp connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "dns tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, responder: &Responder) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => len,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut packet = vec![0u8; usize::from(len)];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request body"))??;
        let answer = match responder.respond(&packet, Transport::Tcp) {
            Outcome::Reply(bytes) => bytes,
            Outcome::Forward => recursor::forward(&packet, responder.config(), Transport::Tcp).await,
            Outcome::Ask(pending) => responder.answer(pending, Transport::Tcp).await,
            Outcome::Drop => continue,
        };
        let Ok(len) = u16::try_from(answer.len()) else { continue };
        if answer.is_empty() {
            continue;
        }
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&answer);
        stream.write_all(&framed).await?;
    }
}
