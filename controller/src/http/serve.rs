//! Serving the HTTP API (plain and HTTPS) with the limits a port open to a network needs, which
//! `axum::serve` does not set: a client has `HEADER_READ_TIMEOUT` to send its request head (a
//! slowloris connection is closed instead of held forever), and a head larger than
//! `MAX_HEAD_BYTES` (Go's default `MaxHeaderBytes`, as Consul serves) or with more than 100
//! headers is answered 431. Bodies are limited per route (`decode::read_body`).

use std::time::Duration;

use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;

/// How long a connection may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a request head may take (Go's `http.DefaultMaxHeaderBytes`).
pub const MAX_HEAD_BYTES: usize = 1 << 20;

/// Accepts connections on `listener` and answers them with `router`, until the listener fails.
pub async fn serve<L: Listener>(mut listener: L, router: Router) {
    loop {
        let (io, _) = listener.accept().await;
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES);
            builder.http2().timer(TokioTimer::new()).max_header_list_size(MAX_HEAD_BYTES as u32);
            // A connection that fails (a timeout, a malformed request) ends here; hyper has
            // already answered what could be answered.
            let _ = builder.serve_connection_with_upgrades(TokioIo::new(io), service).await;
        });
    }
}
