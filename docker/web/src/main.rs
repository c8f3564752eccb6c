//! The docker demo's web backend (seed 000's `helloworld`): `GET /` answers with the container's
//! hostname; `GET /health` answers 200 until `POST /health/fail` (then 503, until
//! `POST /health/pass`). `census-demo-web -check` is its HEALTHCHECK: exit 0 when /health is 200.
//! std only, so it builds static in seconds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn port() -> u16 {
    std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(80)
}

/// Reads one request head; returns (method, path) and drains the body it declares.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some((method, path))
}

fn serve(stream: TcpStream, name: &str, healthy: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    while let Some((method, path)) = read_request(&mut reader) {
        let (status, body) = match (method.as_str(), path.as_str()) {
            ("GET", "/health") if healthy.load(Ordering::SeqCst) => ("200 OK", "healthy\n".to_string()),
            ("GET", "/health") => ("503 Service Unavailable", "unhealthy\n".to_string()),
            ("POST", "/health/fail") => {
                healthy.store(false, Ordering::SeqCst);
                ("200 OK", "health now failing\n".to_string())
            }
            ("POST", "/health/pass") => {
                healthy.store(true, Ordering::SeqCst);
                ("200 OK", "health now passing\n".to_string())
            }
            _ => ("200 OK", format!("{name}\n")),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// HEALTHCHECK: GET /health on the local port; exit 0 on 200.
fn check() -> i32 {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port())) else { return 1 };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").is_err() {
        return 1;
    }
    // The status line is the whole verdict; the server may keep the connection open after it.
    let mut status = String::new();
    let _ = BufReader::new(stream).read_line(&mut status);
    println!("{}", if status.is_empty() { "no answer" } else { status.trim_end() });
    if status.starts_with("HTTP/1.1 200") { 0 } else { 1 }
}

fn main() {
    if std::env::args().any(|a| a == "-check" || a == "--check") {
        std::process::exit(check());
    }
    let name = Arc::new(hostname());
    let healthy = Arc::new(AtomicBool::new(true));
    let listener = match TcpListener::bind(("0.0.0.0", port())) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("census-demo-web: cannot listen on port {}: {e}", port());
            std::process::exit(1);
        }
    };
    eprintln!("census-demo-web {name} listening on port {}", port());
    for stream in listener.incoming().flatten() {
        let (name, healthy) = (name.clone(), healthy.clone());
        std::thread::spawn(move || serve(stream, &name, &healthy));
    }
}
