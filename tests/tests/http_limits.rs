//! The HTTP API on a port open to a network: an oversized request head is answered 431; slow
//! clients that never finish their request head (slowloris), or never send a byte, neither stall
//! other clients nor keep their connections; and no route reads more of a body than its limit, on a server or on a
//! client agent that forwards to one (a request that declares 2 GiB is refused by its length, or
//! answered without its body, never waited on).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use census_e2e::{Agent, eventually, single_server};

/// Sends `head` (and nothing more) and reads the status line of the answer, if one comes within
/// `within`.
fn status_of(addr: &str, head: &str, within: Duration) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(within)).ok()?;
    stream.write_all(head.as_bytes()).ok()?;
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).ok()?;
    let line = String::from_utf8_lossy(&answer[..n]).into_owned();
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_request_head_is_answered_431() {
    let (agent, _dir) = single_server("n0", &[]).await;
    let addr = agent.http_addr();
    let big = "x".repeat(2 << 20);
    let head = format!("GET /v1/status/leader HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n");
    let status = tokio::task::spawn_blocking(move || status_of(&addr, &head, Duration::from_secs(10)))
        .await
        .expect("join");
    assert_eq!(status, Some(431));
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let head = format!("GET /v1/status/leader HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    let addr = agent.http_addr();
    let status = tokio::task::spawn_blocking(move || status_of(&addr, &head, Duration::from_secs(10)))
        .await
        .expect("join");
    assert_eq!(status, Some(431), "200 headers");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_do_not_stall_others_and_are_cut_off() {
    let (agent, _dir) = single_server("n0", &[]).await;
    let addr = agent.http_addr();
    // 500 connections that never finish a request head: most start one, some send nothing at all,
    // some only the start of HTTP/2's preface (before HTTP/1's head timeout can start).
    let mut slow: Vec<TcpStream> = (0..500)
        .map(|i| {
            let mut s = TcpStream::connect(&addr).expect("connect");
            let start: &[u8] = match i % 5 {
                0 => b"",
                1 => b"PRI * HTTP",
                _ => b"GET /v1/kv/x HTTP/1.1\r\nHost: a\r\nX-Slow: ",
            };
            s.write_all(start).expect("partial head");
            s
        })
        .collect();
    let http = reqwest::Client::new();
    let mut took = Vec::new();
    for _ in 0..200 {
        let began = Instant::now();
        let resp = http.get(format!("http://{addr}/v1/status/leader")).send().await.expect("answered");
        assert!(resp.status().is_success());
        took.push(began.elapsed());
    }
    took.sort();
    println!("with 500 slow connections open: p50 {:?}, p99 {:?}", took[100], took[197]);
    // The server closes them once their time to send a head is up (10 s).
    let reader = tokio::task::spawn_blocking(move || {
        slow.iter_mut().map(closed_by_server).filter(|closed| *closed).count()
    });
    let closed = reader.await.expect("join");
    assert_eq!(closed, 500, "slow connections the server closed");
}

/// Reads until the server closes the connection (end of stream, perhaps after a 408): true, or
/// false when nothing closes it within 30 s.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    if stream.set_read_timeout(Some(Duration::from_secs(30))).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// `(METHOD, path)` of the routes that take a request body, with path parameters filled in.
fn body_routes() -> Vec<(String, String)> {
    census_e2e::routes::all()
        .into_iter()
        .filter(|(m, _)| m == "PUT" || m == "POST")
        // Leaving stops the agent under test.
        .filter(|(_, p)| p != "/v1/agent/leave")
        .map(|(m, p)| {
            let filled: Vec<String> = p
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') || seg.starts_with(':') || seg.starts_with('*') {
                        "x".into()
                    } else {
                        seg.to_string()
                    }
                })
                .collect();
            (m, filled.join("/"))
        })
        .collect()
}

async fn declared_huge_and_empty(addr: String, method: String, path: String) -> (Option<u16>, Option<u16>) {
    tokio::task::spawn_blocking(move || {
        let huge = format!("{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 2147483648\r\n\r\n{{");
        let empty =
            format!("{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        (status_of(&addr, &huge, Duration::from_secs(5)), status_of(&addr, &empty, Duration::from_secs(5)))
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread")]
async fn no_route_reads_more_of_a_body_than_its_limit() {
    let (server, dir) = single_server("n0", &[]).await;
    let mut client = Agent::client_agent("c0", dir.path().join("c0"), &server.raft_addr(), vec![]);
    client.start();
    eventually(Duration::from_secs(30), "the client agent's node in the catalog", || async {
        let url = format!("http://{}/v1/catalog/node/c0", client.http_addr());
        let body = reqwest::get(url).await.ok()?.text().await.ok()?;
        body.contains("\"c0\"").then_some(())
    })
    .await;
    let routes = body_routes();
    assert!(routes.len() > 40, "the route table has {} body routes", routes.len());
    let mut failures = Vec::new();
    for agent in [&server, &client] {
        for (method, path) in &routes {
            let (huge, empty) =
                declared_huge_and_empty(agent.http_addr(), method.clone(), path.clone()).await;
            // Refused by its declared length, or answered as if it had no body (it reads none).
            if huge.is_none() || (huge != Some(413) && huge != empty) {
                failures.push(format!("{} {method} {path}: {huge:?} (empty body: {empty:?})", agent.name));
            }
        }
    }
    assert!(failures.is_empty(), "routes that waited on a 2 GiB body:\n{}", failures.join("\n"));
    // Both agents still answer.
    for agent in [&server, &client] {
        eventually(Duration::from_secs(10), "the agent to answer", || async {
            reqwest::get(format!("http://{}/v1/agent/self", agent.http_addr()))
                .await
                .ok()?
                .status()
                .is_success()
                .then_some(())
        })
        .await;
    }
}
