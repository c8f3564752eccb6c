//! `census-sidecar register --platform kubernetes` without a cluster: the downward-API environment
//! a pod would get, a real census agent, a real HTTP app whose health the test switches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use census_client::types::ServiceEntry;
use census_client::{Client, QueryOptions};
use census_e2e::backend::Backend;
use census_e2e::sidecar::Sidecar;
use census_e2e::{eventually, single_server};

const LEASE_TTL: &str = "2s";

fn pod_env(pod: &str) -> Vec<(&'static str, String)> {
    vec![
        ("POD_NAME", pod.to_string()),
        ("POD_NAMESPACE", "shop".to_string()),
        ("POD_IP", "127.0.0.1".to_string()),
        ("NODE_NAME", "kind-worker".to_string()),
    ]
}

fn register_args(agent: &str, port: u16, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "register",
        "-platform",
        "kubernetes",
        "-consul-addr",
        agent,
        "-service",
        "web",
        "-check-http",
        "/health",
        "-check-interval",
        "100ms",
        "-ttl",
        LEASE_TTL,
        "-tags",
        "v2,canary",
        "-meta",
        "team=shop",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["-port".to_string(), port.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

async fn web_entries(client: &Client) -> Vec<ServiceEntry> {
    client.health_service("web", false, &QueryOptions::default()).await.map(|(e, _)| e).unwrap_or_default()
}

/// The status of check `suffix` ("" = lease, ":health") of the one `web` instance.
fn check_status(entries: &[ServiceEntry], suffix: &str) -> Option<String> {
    let entry = entries.first()?;
    let id = format!("service:{}{suffix}", entry.service.id);
    entry.checks.iter().find(|c| c.check_id == id).map(|c| c.status.clone())
}

async fn wait_health(client: &Client, suffix: &str, want: &str) -> Vec<ServiceEntry> {
    eventually(Duration::from_secs(10), &format!("check{suffix} {want}"), || async {
        let entries = web_entries(client).await;
        (check_status(&entries, suffix).as_deref() == Some(want)).then_some(entries)
    })
    .await
}

/// Waits until the `:health` check has status `want` and its output contains `needle`.
async fn wait_health_output(client: &Client, want: &str, needle: &str) {
    eventually(Duration::from_secs(10), &format!("health check {want} saying {needle}"), || async {
        let entries = web_entries(client).await;
        let check = entries.first()?.checks.iter().find(|c| c.check_id.ends_with(":health"))?.clone();
        (check.status == want && check.output.contains(needle)).then_some(())
    })
    .await
}

#[tokio::test]
async fn pod_registers_from_env_follows_its_health_and_deregisters_on_sigterm() {
    let (agent, dir) = single_server("k8s1", &[]).await;
    let client = agent.client();
    let app = Backend::start("web-0").await;
    let log = dir.path().join("sidecar.log");
    let mut sidecar =
        Sidecar::spawn(&register_args(&agent.http_addr(), app.port, &[]), &pod_env("web-0"), &log);

    let entries = wait_health(&client, ":health", "passing").await;
    assert_eq!(entries.len(), 1, "one instance: {entries:?}");
    let svc = &entries[0].service;
    assert_eq!(svc.id, format!("shop:web-0:{}", app.port));
    assert_eq!((svc.address.as_str(), svc.port), ("127.0.0.1", app.port));
    assert_eq!(svc.tags, vec!["v2", "canary"]);
    assert_eq!(svc.meta.get("k8s-pod").map(String::as_str), Some("web-0"));
    assert_eq!(svc.meta.get("k8s-node").map(String::as_str), Some("kind-worker"));
    assert_eq!(svc.meta.get("team").map(String::as_str), Some("shop"));
    assert_eq!(check_status(&entries, ""), Some("passing".into()), "lease passing");

    // The app fails its health endpoint: critical, and out of ?passing, within a couple of probes.
    app.set_healthy(false);
    let entries = wait_health(&client, ":health", "critical").await;
    let output = entries[0].checks.iter().map(|c| c.output.clone()).collect::<Vec<_>>().join(" | ");
    assert!(output.contains("503"), "output names the failure: {output}");
    let passing = client.health_service("web", true, &QueryOptions::default()).await.expect("health").0;
    assert!(passing.is_empty(), "critical instance not offered as passing");
    app.set_healthy(true);
    wait_health(&client, ":health", "passing").await;

    // SIGTERM: deregistered, then a clean exit.
    assert_eq!(sidecar.terminate(Duration::from_secs(10)), Some(true), "clean exit; log:\n{}", sidecar.log());
    assert!(web_entries(&client).await.is_empty(), "deregistered before exiting");
}

#[tokio::test]
async fn catalog_outage_then_recovery_re_registers_exactly_once() {
    let (mut agent, dir) = single_server("k8s2", &[]).await;
    let client = agent.client();
    let app = Backend::start("web-1").await;
    let log = dir.path().join("sidecar.log");
    let mut sidecar =
        Sidecar::spawn(&register_args(&agent.http_addr(), app.port, &[]), &pod_env("web-1"), &log);
    wait_health(&client, ":health", "passing").await;

    // The catalog goes away and comes back empty (a new server on the same address).
    agent.kill();
    std::fs::remove_dir_all(dir.path().join("k8s2")).expect("wipe data dir");
    // The app's state changes during the outage; the sidecar keeps measuring.
    app.set_healthy(false);
    eventually(Duration::from_secs(10), "the sidecar to notice the outage", || async {
        sidecar.log().contains("catalog unreachable").then_some(())
    })
    .await;
    agent.start();
    agent.wait_registered().await;
    let entries = wait_health(&client, ":health", "critical").await;
    assert_eq!(entries.len(), 1, "re-registered once: {entries:?}");
    assert_eq!(sidecar.terminate(Duration::from_secs(10)), Some(true));
}

#[tokio::test]
async fn a_killed_sidecar_goes_critical_within_its_lease_and_is_then_removed() {
    let (agent, dir) = single_server("k8s3", &[]).await;
    let client = agent.client();
    let app = Backend::start("web-2").await;
    let log = dir.path().join("sidecar.log");
    let args = register_args(&agent.http_addr(), app.port, &["-deregister-after", "2s"]);
    let mut sidecar = Sidecar::spawn(&args, &pod_env("web-2"), &log);
    wait_health(&client, "", "passing").await;

    sidecar.kill();
    let killed = Instant::now();
    wait_health(&client, "", "critical").await;
    let critical_after = killed.elapsed();
    eventually(Duration::from_secs(10), "the instance to be reaped", || async {
        web_entries(&client).await.is_empty().then_some(())
    })
    .await;
    let removed_after = killed.elapsed();
    // Lease TTL 2 s, then 2 s critical: the instance is never removed before both have run.
    assert!(critical_after <= Duration::from_secs(4), "critical after {critical_after:?}");
    assert!(removed_after >= Duration::from_secs(2), "removed too early: {removed_after:?}");
    eprintln!("lease: critical after {critical_after:?}, removed after {removed_after:?}");
}

#[tokio::test]
async fn missing_downward_api_env_is_a_clear_error() {
    let (ok, stderr) = Sidecar::run(
        &["register", "-platform", "kubernetes", "-service", "web", "-port", "80"].map(String::from),
        &[],
    );
    assert!(!ok);
    assert!(stderr.contains("POD_NAME"), "{stderr}");
}

#[tokio::test]
async fn grpc_health_check_follows_the_serving_status() {
    let (agent, dir) = single_server("k8s4", &[]).await;
    let client = agent.client();
    let status = Arc::new(AtomicU8::new(1));
    let port = census_e2e::backend::grpc_health_server(status.clone()).await;
    let args: Vec<String> = [
        "register",
        "-platform",
        "kubernetes",
        "-consul-addr",
        &agent.http_addr(),
        "-service",
        "web",
        "-port",
        &port.to_string(),
        "-check-grpc",
        "-check-interval",
        "100ms",
    ]
    .map(String::from)
    .to_vec();
    let _sidecar = Sidecar::spawn(&args, &pod_env("grpc-0"), &dir.path().join("sidecar.log"));
    // The registration carries the status; the output follows in the next check update.
    wait_health_output(&client, "passing", "SERVING").await;
    status.store(2, Ordering::SeqCst);
    wait_health_output(&client, "critical", "NOT_SERVING").await;
}
