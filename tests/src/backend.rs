//! Tiny keep-alive HTTP/1.1 backends that answer every request with their own name; `/health`
//! answers 200 or 503 as the test switches it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A backend listening on loopback; stops when dropped.
pub struct Backend {
    pub name: String,
    pub port: u16,
    healthy: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        let body = name.to_string();
        let healthy = Arc::new(AtomicBool::new(true));
        let health = healthy.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, body.clone(), health.clone()));
            }
        });
        Backend { name: name.into(), port, healthy, task }
    }

    /// What `/health` answers from now on: 200 when true, 503 when false.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn response(status: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// Answers each request head (up to the blank line) with `200 body`, keeping the connection open.
async fn serve(mut stream: TcpStream, body: String, healthy: Arc<AtomicBool>) {
    let ok = response("200 OK", &body);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let is_health = buf.starts_with(b"GET /health ");
            buf.drain(..end + 4);
            let answer = match (is_health, healthy.load(Ordering::SeqCst)) {
                (true, true) => response("200 OK", "healthy"),
                (true, false) => response("503 Service Unavailable", "unhealthy"),
                (false, _) => ok.clone(),
            };
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A gRPC health server (h2c, `grpc.health.v1.Health/Check`) answering the status the test sets:
/// 1 SERVING, 2 NOT_SERVING. Returns its port.
pub async fn grpc_health_server(status: std::sync::Arc<std::sync::atomic::AtomicU8>) -> u16 {
    use axum::http::header::CONTENT_TYPE;
    let app = axum::Router::new().route(
        "/grpc.health.v1.Health/Check",
        axum::routing::post(move || {
            let status = status.load(std::sync::atomic::Ordering::SeqCst);
            async move { ([(CONTENT_TYPE, "application/grpc")], vec![0u8, 0, 0, 0, 2, 0x08, status]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}
