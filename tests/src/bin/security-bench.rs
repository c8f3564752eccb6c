//! The cost of ACLs and TLS: KV PUT and `?stale` GET throughput and latency of the same build on
//! a three-server loopback cluster, plain, with ACLs (default deny, a non-management token whose
//! `key_prefix` rule every request is checked against) and with TLS (mutual TLS on the server
//! port, the HTTPS API with a client certificate), each mode run twice, alternating.
//! Usage: `security-bench [SECONDS_PER_STEP] [CLIENTS]` (CENSUS_BIN picks the binary).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use census_client::{Client, TlsOptions};
use census_e2e::bench::{Op, percentile, step};
use census_e2e::{Cluster, census_bin, free_port};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Plain,
    Acl,
    Tls,
}

const MANAGEMENT: &str = "4c1d2e3f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

fn census_tls(dir: &Path, args: &[&str]) {
    let out = Command::new(census_bin()).arg("tls").args(args).current_dir(dir).output().expect("census tls");
    assert!(out.status.success(), "census tls {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A cluster in `mode` and a client for the leader as the benchmark's requests go to it.
async fn start(mode: Mode, work: &Path) -> (Cluster, Client) {
    let certs = work.join("certs");
    if mode == Mode::Tls && !certs.exists() {
        std::fs::create_dir_all(&certs).expect("certs");
        census_tls(&certs, &["ca", "create"]);
        for _ in 0..3 {
            census_tls(&certs, &["cert", "create", "-server"]);
        }
        census_tls(&certs, &["cert", "create", "-client"]);
    }
    let https: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let configs: Vec<std::path::PathBuf> = (0..3)
        .map(|i| {
            let path = work.join(format!("{mode:?}-{i}.json"));
            let cert = |name: String| certs.join(name).display().to_string();
            let config = match mode {
                Mode::Plain => json!({}),
                Mode::Acl => json!({"acl": {"enabled": true, "default_policy": "deny",
                                            "tokens": {"initial_management": MANAGEMENT}}}),
                Mode::Tls => json!({"tls": {"defaults": {
                        "ca_file": cert("consul-agent-ca.pem".into()),
                        "cert_file": cert(format!("dc1-server-consul-{i}.pem")),
                        "key_file": cert(format!("dc1-server-consul-{i}-key.pem")),
                        "verify_incoming": true, "verify_outgoing": true},
                        "internal_rpc": {"verify_server_hostname": true}},
                    "ports": {"https": https[i]}}),
            };
            std::fs::write(&path, config.to_string()).expect("config");
            path
        })
        .collect();
    let cluster = Cluster::start_configured(3, &[], |i, agent| {
        agent.extra.push(format!("-config-file={}", configs[i].display()));
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let client = match mode {
        Mode::Plain => cluster.agents[leader].client(),
        Mode::Acl => {
            let admin = cluster.agents[leader].client().with_token(Some(MANAGEMENT.into()));
            let token = loop {
                let policy =
                    json!({"Name": "bench", "Rules": "key_prefix \"bench/\" { policy = \"write\" }"});
                let body = Some(policy.to_string().into_bytes());
                let _ = admin.raw(reqwest::Method::PUT, "/v1/acl/policy", &[], body, None).await;
                let body = Some(json!({"Policies": [{"Name": "bench"}]}).to_string().into_bytes());
                match admin.raw(reqwest::Method::PUT, "/v1/acl/token", &[], body, None).await {
                    Ok((status, _, bytes)) if status.is_success() => {
                        let token: serde_json::Value = serde_json::from_slice(&bytes).expect("token");
                        break token["SecretID"].as_str().expect("secret").to_string();
                    }
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            cluster.agents[leader].client().with_token(Some(token))
        }
        Mode::Tls => {
            let tls = TlsOptions {
                ca_file: Some(certs.join("consul-agent-ca.pem")),
                cert_file: Some(certs.join("dc1-client-consul-0.pem")),
                key_file: Some(certs.join("dc1-client-consul-0-key.pem")),
                skip_verify: false,
            };
            Client::with_tls(&format!("https://127.0.0.1:{}", https[leader]), &tls).expect("client")
        }
    };
    (cluster, client)
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let clients: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let work = tempfile::tempdir().expect("tempdir");
    let mut rows: Vec<(Mode, Op, f64, f64, f64)> = Vec::new();
    for round in 0..2 {
        for mode in [Mode::Plain, Mode::Acl, Mode::Tls] {
            let (cluster, client) = start(mode, work.path()).await;
            for op in [Op::Put, Op::GetStale] {
                // Warm the keys the readers read and the connections.
                let _ = step(client.clone(), Op::Put, clients, Duration::from_millis(500)).await;
                let r = step(client.clone(), op, clients, Duration::from_secs(secs)).await;
                assert_eq!(r.errors, 0, "{mode:?} {op:?}: {} requests failed", r.errors);
                let ops = r.ops as f64 / r.secs;
                let p50 = percentile(&r.latencies_us, 0.50) as f64 / 1000.0;
                let p99 = percentile(&r.latencies_us, 0.99) as f64 / 1000.0;
                eprintln!("round {round} {mode:?} {op:?}: {ops:.0} ops/s");
                rows.push((mode, op, ops, p50, p99));
            }
            drop(cluster);
        }
    }
    println!("| mode | op | clients | ops/s (2 runs) | ratio to plain | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|---|");
    for op in [Op::Put, Op::GetStale] {
        let plain: f64 =
            rows.iter().filter(|r| r.0 == Mode::Plain && r.1 == op).map(|r| r.2).sum::<f64>() / 2.0;
        for mode in [Mode::Plain, Mode::Acl, Mode::Tls] {
            let runs: Vec<&(Mode, Op, f64, f64, f64)> =
                rows.iter().filter(|r| r.0 == mode && r.1 == op).collect();
            let mean = runs.iter().map(|r| r.2).sum::<f64>() / runs.len() as f64;
            let p50 = runs.iter().map(|r| r.3).sum::<f64>() / runs.len() as f64;
            let p99 = runs.iter().map(|r| r.4).sum::<f64>() / runs.len() as f64;
            let each: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.2)).collect();
            println!(
                "| {mode:?} | {op:?} | {clients} | {} | {:.2} | {p50:.2} | {p99:.2} |",
                each.join(" / "),
                mean / plain
            );
        }
    }
}
