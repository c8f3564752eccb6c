//! The shipped nginx templates of both languages (nginx.conf.hbs, nginx.conf.ctmpl) in front of a
//! real WebSocket echo backend and behind TLS: `census-sidecar render` with a certificate named in
//! KV renders a file `nginx -t` accepts, and a real nginx (Debian's) passes a WebSocket upgrade
//! through to the echo backend and answers HTTPS with the certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use census_client::{Client, KvWriteOptions};
use census_e2e::backend::Backend;
use census_e2e::nginx::Nginx;
use census_e2e::sidecar::Sidecar;
use census_e2e::{eventually, free_port, put, single_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// SHA-1 (RFC 3174), for the WebSocket handshake's Sec-WebSocket-Accept.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in message.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (slot, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *slot = slot.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn accept_key(key: &str) -> String {
    let digest = sha1(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Reads up to the blank line that ends an HTTP head.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// One frame: (opcode, payload), unmasked.
async fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).await.ok()?;
            u64::from(u16::from_be_bytes(n))
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n).await.ok()?;
            u64::from_be_bytes(n)
        }
        n => u64::from(n),
    };
    let mut mask = [0u8; 4];
    if head[1] & 0x80 != 0 {
        stream.read_exact(&mut mask).await.ok()?;
    }
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    stream.read_exact(&mut payload).await.ok()?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Some((head[0] & 0x0f, payload))
}

/// A frame with a payload under 126 bytes, masked when `mask` is given (client to server).
fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, payload.len() as u8 | if mask.is_some() { 0x80 } else { 0 }];
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A WebSocket echo server (RFC 6455: handshake, then every data frame sent back); its port.
async fn websocket_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(head) = read_head(&mut stream).await else { return };
                let Some(key) = head.lines().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_string())
                }) else {
                    let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
                    return;
                };
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    accept_key(&key)
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                while let Some((opcode, payload)) = read_frame(&mut stream).await {
                    let reply = frame(opcode, &payload, None);
                    if stream.write_all(&reply).await.is_err() || opcode == 8 {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Through nginx: the upgrade is answered 101 with the right accept key, and a text frame comes
/// back from the echo backend.
async fn websocket_round_trip(port: u16, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let head = read_head(&mut stream).await.ok_or("no answer to the upgrade")?;
    if !head.starts_with("HTTP/1.1 101") || !head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") {
        return Err(format!("not upgraded: {head}"));
    }
    stream
        .write_all(&frame(1, b"hello through nginx", Some([7, 1, 9, 3])))
        .await
        .map_err(|e| e.to_string())?;
    let (opcode, payload) = read_frame(&mut stream).await.ok_or("no echo")?;
    (opcode == 1).then_some(()).ok_or(format!("opcode {opcode}"))?;
    Ok(String::from_utf8_lossy(&payload).into_owned())
}

/// A self-signed certificate and key for 127.0.0.1, made by Debian's openssl.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("lb.pem"), dir.join("lb.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// Stops nginx through its master when dropped, so no orphaned worker keeps a port.
struct StopNginx(PathBuf);

impl Drop for StopNginx {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            // The master removes its pid file once its workers are gone.
            while self.0.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

async fn register(client: &Client, id: &str, name: &str, port: u16) {
    let check = serde_json::json!({"CheckID": format!("{id}-ttl"), "TTL": "1h"});
    let body = serde_json::json!({"ID": id, "Name": name, "Port": port, "Check": check});
    put(client, "/v1/agent/service/register", Some(body)).await;
    put(client, &format!("/v1/agent/check/pass/{id}-ttl"), None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_nginx_templates_pass_websockets_and_terminate_tls() {
    let (agent, _agent_dir) = single_server("render-ws-tls", &[]).await;
    let client = agent.client();
    let web = Backend::start("b1").await;
    register(&client, "b1", "web", web.port).await;
    register(&client, "echo1", "ws", websocket_echo().await).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(dir.path());
    client
        .kv_put("nginx/tls/cert", cert.display().to_string().as_bytes(), KvWriteOptions::default())
        .await
        .expect("put");
    client
        .kv_put("nginx/tls/key", key.display().to_string().as_bytes(), KvWriteOptions::default())
        .await
        .expect("put");
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sidecar/templates");
    for template in ["nginx.conf.hbs", "nginx.conf.ctmpl"] {
        let root = dir.path().join(template.replace('.', "-"));
        let mut nginx = Nginx::prepare(&root, free_port());
        let tls_port = free_port();
        let envs = [("NGINX_LISTEN", nginx.port.to_string()), ("NGINX_TLS_LISTEN", tls_port.to_string())];
        let spec = format!(
            "{}:{}",
            templates.join(template).display(),
            nginx.conf_d().join("default.conf").display()
        );
        let args = [
            "render",
            "-once",
            "-consul-addr",
            &agent.http_addr(),
            "-template",
            &spec,
            "-nginx-check",
            "fragment",
        ];
        let (ok, stderr) = Sidecar::run(&args.map(String::from), &envs);
        assert!(ok, "{template}: render -once failed: {stderr}");
        nginx.start();
        let _stop = StopNginx(nginx.pid_file());
        let echoed = eventually(Duration::from_secs(10), "a WebSocket round trip through nginx", || async {
            websocket_round_trip(nginx.port, "/ws").await.ok()
        })
        .await;
        assert_eq!(echoed, "hello through nginx", "{template}");

        let https = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(&cert)
            .arg(format!("https://127.0.0.1:{tls_port}/web"))
            .output()
            .expect("curl");
        let body = String::from_utf8_lossy(&https.stdout);
        assert_eq!(body, "b1", "{template}: HTTPS through nginx: {}", String::from_utf8_lossy(&https.stderr));
    }
}

#[test]
fn sha1_matches_the_rfc_vectors() {
    let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
