//! Serving the HTTP API (plain and HTTPS) with the limits a port open to a network needs, which
//! `axum::serve` does not set: a client has `HEADER_READ_TIMEOUT` to send its request head (a
//! slowloris connection is closed instead of held forever), and a head larger than
//! `MAX_HEAD_BYTES` (Go's default `MaxHeaderBytes`, as Consul serves) or with more than 100
//! headers is answered 431. Bodies are limited per route (`decode::read_body`).
//!
//! hyper-util tells HTTP/2 from HTTP/1 by the connection's first bytes and waits for them without
//! a timer, before HTTP/1's head timeout starts: a connection that sends nothing, or only part of
//! HTTP/2's preface, would be held forever. Those first bytes are read here, under the same
//! timeout, and handed back to hyper in front of the rest of the stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// How long a connection may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a request head may take (Go's `http.DefaultMaxHeaderBytes`).
pub const MAX_HEAD_BYTES: usize = 1 << 20;
/// How often an HTTP/2 connection is pinged (one that does not answer within hyper's 20 s
/// keep-alive timeout is closed).
const H2_PING_EVERY: Duration = Duration::from_secs(10);
/// What an HTTP/2 connection begins with (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Accepts connections on `listener` and answers them with `router`, until the listener fails.
pub async fn serve<L: Listener>(mut listener: L, router: Router) {
    loop {
        let (mut io, _) = listener.accept().await;
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let Ok(Some(first)) = tokio::time::timeout(HEADER_READ_TIMEOUT, first_bytes(&mut io)).await
            else {
                return;
            };
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES);
            // An HTTP/2 connection has no head timeout: a peer that stops answering pings is cut off.
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_header_list_size(MAX_HEAD_BYTES as u32)
                .keep_alive_interval(Some(H2_PING_EVERY));
            // A connection that fails (a timeout, a malformed request) ends here; hyper has
            // already answered what could be answered.
            let io = Prefixed { first, at: 0, io };
            let _ = builder.serve_connection_with_upgrades(TokioIo::new(io), service).await;
        });
    }
}

/// Reads until the bytes so far are HTTP/2's whole preface or stop matching it (then it is
/// HTTP/1, whose own head timeout takes over); `None` when the peer closes first.
async fn first_bytes<I: AsyncRead + Unpin>(io: &mut I) -> Option<Vec<u8>> {
    let mut first = Vec::with_capacity(H2_PREFACE.len());
    let mut chunk = [0u8; H2_PREFACE.len()];
    while first.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&first) {
        let n = io.read(&mut chunk[..H2_PREFACE.len() - first.len()]).await.ok()?;
        if n == 0 {
            return None;
        }
        first.extend_from_slice(&chunk[..n]);
    }
    Some(first)
}

/// A connection whose first bytes were already read: they are read again first.
struct Prefixed<I> {
    first: Vec<u8>,
    at: usize,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.first.len() {
            let n = buf.remaining().min(this.first.len() - this.at);
            buf.put_slice(&this.first[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_bytes_stop_where_they_leave_the_http2_preface_and_are_read_again() {
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\n").await.expect("write");
        let first = first_bytes(&mut server).await.expect("bytes");
        assert!(!first.is_empty() && !H2_PREFACE.starts_with(&first), "{first:?}");
        let mut prefixed = Prefixed { first, at: 0, io: server };
        drop(client);
        let mut all = Vec::new();
        prefixed.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn the_whole_preface_is_read_and_a_partial_one_waits() {
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, &H2_PREFACE[..10]).await.expect("write");
        let waiting = tokio::time::timeout(Duration::from_millis(50), first_bytes(&mut server)).await;
        assert!(waiting.is_err(), "a partial preface is not enough to choose");
        tokio::io::AsyncWriteExt::write_all(&mut client, &H2_PREFACE[10..]).await.expect("write");
        // The first call was cancelled after reading 10 bytes: a new one reads the other 14.
        let rest = first_bytes(&mut server).await.expect("bytes");
        assert_eq!(rest, &H2_PREFACE[10..]);
    }
}
