//! TLS on the server port and the HTTPS API: a three-server cluster whose certificates come from
//! `census tls`, with `verify_incoming`, `verify_outgoing` and `verify_server_hostname`, forms and
//! replicates over TLS; a plaintext peer and a server with another CA's certificate are refused,
//! and a client agent's certificate reaches only the routes client agents use;
//! the HTTPS API answers only a client with a certificate from the CA.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use census_client::KvWriteOptions;
use census_e2e::{Agent, Cluster, census_bin, eventually, free_port};
use serde_json::json;

fn census_tls(dir: &Path, args: &[&str]) {
    let out = Command::new(census_bin()).arg("tls").args(args).current_dir(dir).output().expect("census tls");
    assert!(out.status.success(), "census tls {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA in `dir` and `n` server certificates (`dc1-server-consul-<i>.pem`).
fn make_certs(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("cert dir");
    census_tls(dir, &["ca", "create"]);
    for _ in 0..n {
        census_tls(dir, &["cert", "create", "-server"]);
    }
    census_tls(dir, &["cert", "create", "-client"]);
}

/// The config of server `i`: TLS with every check on, HTTPS on `https_port`.
fn tls_config(dir: &Path, certs: &Path, i: usize, https_port: u16) -> PathBuf {
    let path = dir.join(format!("tls-{i}.json"));
    let cert = |name: String| certs.join(name).display().to_string();
    let config = json!({
        "tls": {
            "defaults": {
                "ca_file": cert("consul-agent-ca.pem".into()),
                "cert_file": cert(format!("dc1-server-consul-{i}.pem")),
                "key_file": cert(format!("dc1-server-consul-{i}-key.pem")),
                "verify_incoming": true,
                "verify_outgoing": true,
            },
            "internal_rpc": {"verify_server_hostname": true},
        },
        "ports": {"https": https_port},
    });
    std::fs::write(&path, config.to_string()).expect("config");
    path
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "5"]).args(args).output().expect("curl");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[tokio::test]
async fn servers_form_over_mutual_tls_and_refuse_plaintext_and_other_cas() {
    let work = tempfile::tempdir().expect("tempdir");
    let certs = work.path().join("certs");
    make_certs(&certs, 3);
    let https: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let configs: Vec<PathBuf> = (0..3).map(|i| tls_config(work.path(), &certs, i, https[i])).collect();
    let cluster = Cluster::start_configured(3, &[], |i, agent| {
        agent.extra.push(format!("-config-file={}", configs[i].display()));
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = cluster.other_than(leader);
    cluster.agents[leader].client().kv_put("over/tls", b"yes", KvWriteOptions::default()).await.expect("put");
    let reader = cluster.agents[follower].client();
    eventually(Duration::from_secs(10), "the write to replicate over TLS", || async {
        let (pair, _) = reader.kv_get("over/tls", &Default::default()).await.ok()?;
        pair.filter(|p| p.decoded_value().ok().as_deref() == Some(&b"yes"[..]))
    })
    .await;

    // A plaintext peer gets no Raft answer.
    let plain = reqwest::Client::builder().http2_prior_knowledge().build().expect("client");
    let attempt = plain
        .post(format!("http://{}/raft/whois", cluster.agents[leader].raft_addr()))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    assert!(attempt.is_err(), "a plaintext Raft request was answered: {attempt:?}");

    // A client agent's certificate (same CA) reaches the routes client agents use, not the
    // servers' own: with it, a peer could otherwise append entries, vote or install a snapshot.
    let raft = |path: &str, role: &str| {
        let cert = certs.join(format!("dc1-{role}-consul-0.pem")).display().to_string();
        let key = certs.join(format!("dc1-{role}-consul-0-key.pem")).display().to_string();
        let ca = certs.join("consul-agent-ca.pem").display().to_string();
        let url = format!("https://{}{path}", cluster.agents[leader].raft_addr());
        let (ok, out) = curl(&[
            "--http2",
            "-X",
            "POST",
            "--data-binary",
            "",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            &url,
        ]);
        assert!(ok, "{path} as {role}: {out}");
        out
    };
    for path in ["/raft/append", "/raft/vote", "/raft/snapshot", "/raft/forward", "/raft/membership"] {
        assert_eq!(raft(path, "client"), "403", "{path} with a client agent's certificate");
        // A server reaches the route (and is told its empty body is not a request).
        assert_eq!(raft(path, "server"), "400", "{path} with a server's certificate");
    }
    assert_eq!(raft("/raft/whois", "client"), "200", "a client agent still finds the servers");
    assert!(
        cluster.agents[leader]
            .log()
            .contains("refused a server route to a peer whose certificate does not name a server"),
        "the refusal is logged"
    );

    // A server whose certificate another CA signed cannot join.
    let foreign = work.path().join("foreign");
    make_certs(&foreign, 1);
    let config = tls_config(work.path(), &foreign, 0, free_port());
    let stranger_config = work.path().join("stranger.json");
    std::fs::rename(&config, &stranger_config).expect("rename");
    let mut stranger = Agent::new(
        "stranger",
        work.path().join("stranger"),
        vec![
            format!("-config-file={}", stranger_config.display()),
            format!("-retry-join={}", cluster.agents[leader].raft_addr()),
        ],
    );
    stranger.start();
    eventually(Duration::from_secs(20), "the cluster to refuse the stranger's handshake", || async {
        let refused = cluster.agents.iter().any(|a| a.log().contains("TLS handshake refused"));
        let failed = stranger.log().contains("unreachable") || stranger.log().contains("certificate");
        (refused || failed).then_some(())
    })
    .await;
    let peers = cluster.agents[leader].client().raft_configuration(false).await.expect("raft configuration");
    assert_eq!(peers.servers.len(), 3, "the stranger is not a peer: {:?}", peers.servers);
    assert!(!peers.servers.iter().any(|s| s.node == "stranger"));

    // HTTPS: a client certificate from the CA is needed (verify_incoming).
    let ca = certs.join("consul-agent-ca.pem").display().to_string();
    let url = format!("https://127.0.0.1:{}/v1/kv/over/tls?raw", https[follower]);
    let cert = certs.join("dc1-client-consul-0.pem").display().to_string();
    let key = certs.join("dc1-client-consul-0-key.pem").display().to_string();
    let (ok, body) = curl(&["--cacert", &ca, "--cert", &cert, "--key", &key, &url]);
    assert!(ok && body == "yes", "{body}");
    let (ok, body) = curl(&["--cacert", &ca, &url]);
    assert!(!ok, "answered without a client certificate: {body}");
    // The CLI over HTTPS, configured as Consul's tools are.
    let out = Command::new(census_bin())
        .args(["kv", "get", "over/tls"])
        .env("CONSUL_HTTP_ADDR", format!("https://127.0.0.1:{}", https[follower]))
        .env("CONSUL_CACERT", &ca)
        .env("CONSUL_CLIENT_CERT", &cert)
        .env("CONSUL_CLIENT_KEY", &key)
        .output()
        .expect("census kv get");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "yes",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let foreign_cert = foreign.join("dc1-client-consul-0.pem").display().to_string();
    let foreign_key = foreign.join("dc1-client-consul-0-key.pem").display().to_string();
    let (ok, body) = curl(&["--cacert", &ca, "--cert", &foreign_cert, "--key", &foreign_key, &url]);
    assert!(!ok, "answered a client certificate of another CA: {body}");
}

#[tokio::test]
async fn a_client_agent_reaches_tls_servers_with_its_certificate() {
    let work = tempfile::tempdir().expect("tempdir");
    let certs = work.path().join("certs");
    make_certs(&certs, 1);
    let config = tls_config(work.path(), &certs, 0, free_port());
    let mut server = Agent::new(
        "tls-s1",
        work.path().join("tls-s1"),
        vec!["-bootstrap-expect=1".into(), format!("-config-file={}", config.display())],
    );
    server.start();
    server.wait_registered().await;
    let client_config = work.path().join("client.json");
    let cert = |name: &str| certs.join(name).display().to_string();
    let body = json!({"tls": {"defaults": {"ca_file": cert("consul-agent-ca.pem"),
        "cert_file": cert("dc1-client-consul-0.pem"), "key_file": cert("dc1-client-consul-0-key.pem"),
        "verify_outgoing": true}, "internal_rpc": {"verify_server_hostname": true}}});
    std::fs::write(&client_config, body.to_string()).expect("config");
    let mut client = Agent::client_agent(
        "tls-c1",
        work.path().join("tls-c1"),
        &server.raft_addr(),
        vec![format!("-config-file={}", client_config.display())],
    );
    client.start();
    let api = server.client();
    eventually(Duration::from_secs(20), "the client agent's node in the catalog", || async {
        let (nodes, _) = api.catalog_nodes(&Default::default()).await.ok()?;
        nodes.iter().any(|n| n.node == "tls-c1").then_some(())
    })
    .await;
    // What it forwards reaches the servers too.
    client
        .client()
        .kv_put("via/client", b"1", KvWriteOptions::default())
        .await
        .expect("put through the client");
}

/// The serial of the certificate the HTTPS port presents now.
fn presented_serial(port: u16, certs: &Path) -> String {
    let cert = |name: &str| certs.join(name).display().to_string();
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -CAfile {} -cert {} -key {} </dev/null 2>/dev/null | openssl x509 -noout -serial",
        cert("consul-agent-ca.pem"),
        cert("dc1-client-consul-0.pem"),
        cert("dc1-client-consul-0-key.pem"),
    );
    let out = Command::new("sh").args(["-c", &script]).output().expect("openssl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn certificates_rotate_on_sighup_without_a_failed_request() {
    let work = tempfile::tempdir().expect("tempdir");
    let certs = work.path().join("certs");
    make_certs(&certs, 1);
    let port = free_port();
    let config = tls_config(work.path(), &certs, 0, port);
    let mut server = Agent::new(
        "rot1",
        work.path().join("rot1"),
        vec!["-bootstrap-expect=1".into(), format!("-config-file={}", config.display())],
    );
    server.start();
    server.wait_registered().await;
    let before = presented_serial(port, &certs);
    assert!(before.starts_with("serial="), "{before}");
    let tls = census_client::TlsOptions {
        ca_file: Some(certs.join("consul-agent-ca.pem")),
        cert_file: Some(certs.join("dc1-client-consul-0.pem")),
        key_file: Some(certs.join("dc1-client-consul-0-key.pem")),
        skip_verify: false,
    };
    let client = census_client::Client::with_tls(&format!("https://127.0.0.1:{port}"), &tls).expect("client");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.kv_put("rotate/n", ok.to_string().as_bytes(), KvWriteOptions::default()).await {
                    Ok(true) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        })
    };
    // A new certificate from the same CA, written over the files the agent reads.
    census_tls(&certs, &["cert", "create", "-server"]);
    for (from, to) in [
        ("dc1-server-consul-1.pem", "dc1-server-consul-0.pem"),
        ("dc1-server-consul-1-key.pem", "dc1-server-consul-0-key.pem"),
    ] {
        std::fs::copy(certs.join(from), certs.join(to)).expect("replace the certificate");
    }
    let pid = server.pid().expect("running");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGHUP)
        .expect("SIGHUP");
    eventually(Duration::from_secs(20), "the HTTPS port to present the new certificate", || async {
        let now = presented_serial(port, &certs);
        (now.starts_with("serial=") && now != before).then_some(())
    })
    .await;
    // Requests go on over the new certificate too.
    let written_after =
        client.kv_put("rotate/after", b"1", KvWriteOptions::default()).await.expect("a write after");
    assert!(written_after);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = writer.await.expect("writer");
    assert!(ok > 0, "the writer wrote nothing");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the rotation: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(3)]
    );
}

#[tokio::test]
async fn an_https_check_of_a_self_signed_endpoint_passes_only_with_tls_skip_verify() {
    let work = tempfile::tempdir().expect("tempdir");
    let certs = work.path().join("certs");
    make_certs(&certs, 1);
    let port = free_port();
    let config = tls_config(work.path(), &certs, 0, port);
    // The HTTPS port asks no client certificate, as an application's own endpoint would not.
    let mut body: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("read")).expect("json");
    body["tls"]["https"] = json!({"verify_incoming": false});
    std::fs::write(&config, body.to_string()).expect("config");
    let mut server = Agent::new(
        "chk1",
        work.path().join("chk1"),
        vec!["-bootstrap-expect=1".into(), format!("-config-file={}", config.display())],
    );
    server.start();
    server.wait_registered().await;
    let api = server.client();
    let url = format!("https://127.0.0.1:{port}/v1/status/leader");
    for (id, skip) in [("skip", true), ("verify", false)] {
        let reg = json!({"Name": id, "Port": 1, "Check": {"CheckID": id, "HTTP": url, "Interval": "1s", "TLSSkipVerify": skip}});
        census_e2e::put(&api, "/v1/agent/service/register", Some(reg)).await;
    }
    let status = |id: &'static str| {
        let api = api.clone();
        async move {
            let (_, _, body) =
                api.raw(reqwest::Method::GET, "/v1/agent/checks", &[], None, None).await.ok()?;
            let checks: serde_json::Value = serde_json::from_slice(&body).ok()?;
            checks[id]["Status"].as_str().map(str::to_string)
        }
    };
    eventually(Duration::from_secs(20), "the TLSSkipVerify check to pass", || async {
        (status("skip").await.as_deref() == Some("passing")).then_some(())
    })
    .await;
    // The other has been run by now too (same interval): the agent trusts no CA for checks.
    let verify = eventually(Duration::from_secs(20), "the verifying check to have run", || async {
        let (_, _, body) = api.raw(reqwest::Method::GET, "/v1/agent/checks", &[], None, None).await.ok()?;
        let checks: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let output = checks["verify"]["Output"].as_str()?.to_string();
        (!output.is_empty()).then_some((checks["verify"]["Status"].as_str()?.to_string(), output))
    })
    .await;
    assert_eq!(verify.0, "critical", "{}", verify.1);
}
