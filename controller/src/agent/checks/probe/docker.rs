//! Docker checks: the check's command run inside a container through the Docker Engine API
//! (`DOCKER_HOST`, by default the socket `/var/run/docker.sock`); exit 0 passing, 1 warning,
//! anything else critical, as for script checks.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::catalog::CheckStatus;

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Where the engine listens, from `DOCKER_HOST` (`unix://PATH` or `tcp://HOST:PORT`).
enum Engine {
    Unix(String),
    Tcp(String),
}

fn engine() -> Result<Engine, String> {
    match std::env::var("DOCKER_HOST") {
        Err(_) => Ok(Engine::Unix(DEFAULT_SOCKET.into())),
        Ok(host) if host.is_empty() => Ok(Engine::Unix(DEFAULT_SOCKET.into())),
        Ok(host) => {
            if let Some(path) = host.strip_prefix("unix://") {
                Ok(Engine::Unix(path.to_string()))
            } else if let Some(addr) = host.strip_prefix("tcp://") {
                Ok(Engine::Tcp(addr.to_string()))
            } else {
                Err(format!("DOCKER_HOST {host:?} is neither unix:// nor tcp://"))
            }
        }
    }
}

/// One request to the engine on a connection of its own; the answer's status and body.
async fn call(method: &str, path: &str, body: Option<Value>) -> Result<(u16, Bytes), String> {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "docker")
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let response = match engine()? {
        Engine::Unix(socket) => {
            let stream = tokio::net::UnixStream::connect(&socket)
                .await
                .map_err(|e| format!("cannot reach the Docker engine at {socket}: {e}"))?;
            send(stream, request).await?
        }
        Engine::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(|e| format!("cannot reach the Docker engine at {addr}: {e}"))?;
            send(stream, request).await?
        }
    };
    Ok(response)
}

async fn send<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<(u16, Bytes), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    driver.abort();
    Ok((status, body))
}

/// The engine's multiplexed output (8-byte frame headers) as text.
fn demultiplex(raw: &[u8]) -> String {
    let mut out = Vec::new();
    let mut rest = raw;
    while rest.len() >= 8 && rest[0] <= 2 && rest[1..4] == [0, 0, 0] {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + len).min(rest.len());
        out.extend_from_slice(&rest[8..end]);
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    String::from_utf8_lossy(&out).into_owned()
}

async fn run(container: &str, command: &[String]) -> Result<(i64, String), String> {
    let create = json!({"AttachStdout": true, "AttachStderr": true, "Cmd": command});
    let (status, body) = call("POST", &format!("/containers/{container}/exec"), Some(create)).await?;
    if status != 201 {
        return Err(format!(
            "docker exec in {container}: {status} {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    let created: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let id = created.get("Id").and_then(Value::as_str).ok_or("the engine gave no exec ID")?.to_string();
    let (_, output) =
        call("POST", &format!("/exec/{id}/start"), Some(json!({"Detach": false, "Tty": false}))).await?;
    let (_, inspect) = call("GET", &format!("/exec/{id}/json"), None).await?;
    let inspect: Value = serde_json::from_slice(&inspect).map_err(|e| e.to_string())?;
    let code = inspect.get("ExitCode").and_then(Value::as_i64).ok_or("the engine gave no exit code")?;
    Ok((code, demultiplex(&output)))
}

pub async fn exec(container: &str, args: &[String], timeout: Duration) -> (CheckStatus, String) {
    match tokio::time::timeout(timeout, run(container, args)).await {
        Err(_) => (CheckStatus::Critical, format!("Timed out ({timeout:?}) running check in {container}")),
        Ok(Err(e)) => (CheckStatus::Critical, e),
        Ok(Ok((code, output))) => {
            let status = match code {
                0 => CheckStatus::Passing,
                1 => CheckStatus::Warning,
                _ => CheckStatus::Critical,
            };
            (status, output)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::demultiplex;

    #[test]
    fn frames_of_stdout_and_stderr_are_joined() {
        let mut raw = vec![1, 0, 0, 0, 0, 0, 0, 3];
        raw.extend_from_slice(b"ok\n");
        raw.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        raw.extend_from_slice(b"err\n");
        assert_eq!(demultiplex(&raw), "ok\nerr\n");
        assert_eq!(demultiplex(b"plain"), "plain");
    }
}
