//! Complete health checking on a real agent: script checks (refused without
//! -enable-script-checks), anti-flap counters, gRPC checks, an HTTP check that must not follow a
//! redirect to another host (a canary listener receives nothing), and maintenance mode.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::response::IntoResponse;
use census_client::{Client, QueryOptions};
use census_e2e::{census_bin, eventually, put, single_server};
use serde_json::{Value, json};

async fn check_status(client: &Client, id: &str) -> Option<String> {
    let (_, _, body) = client.raw(reqwest::Method::GET, "/v1/agent/checks", &[], None, None).await.ok()?;
    let checks: Value = serde_json::from_slice(&body).ok()?;
    checks[id]["Status"].as_str().map(str::to_string)
}

async fn wait_status(client: &Client, id: &str, want: &str) {
    eventually(Duration::from_secs(15), &format!("{id} to be {want}"), || async {
        (check_status(client, id).await.as_deref() == Some(want)).then_some(())
    })
    .await;
}

async fn passing(client: &Client, service: &str) -> usize {
    client.health_service(service, true, &QueryOptions::default()).await.map(|(e, _)| e.len()).unwrap_or(0)
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

/// A script that logs each run to `runs` and exits with the code in `mode`.
fn counting_script(dir: &Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let runs = dir.join("runs");
    let mode = dir.join("mode");
    std::fs::write(&mode, "0").expect("mode");
    let script = format!("echo run >> {}; exit $(cat {})", runs.display(), mode.display());
    (script, runs, mode)
}

#[tokio::test(flavor = "multi_thread")]
async fn script_checks_need_the_flag() {
    let (agent, _data) = single_server("plain", &[]).await;
    let body = json!({"Name": "job", "Check": {"Args": ["true"], "Interval": "1s"}});
    let bytes = serde_json::to_vec(&body).expect("json");
    let (status, _, answer) = agent
        .client()
        .raw(reqwest::Method::PUT, "/v1/agent/service/register", &[], Some(bytes), None)
        .await
        .expect("request");
    assert_eq!(status.as_u16(), 400);
    assert!(String::from_utf8_lossy(&answer).contains("enable_script_checks"));
    assert!(
        agent.client().catalog_service("job", &QueryOptions::default()).await.expect("read").0.is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anti_flap_counters_hold_a_status_until_enough_results_agree() {
    let (agent, _data) = single_server("n1", &["-enable-script-checks"]).await;
    let client = agent.client();
    let dir = tempfile::tempdir().expect("tempdir");
    let (script, runs, mode) = counting_script(dir.path());
    let body = json!({"Name": "job", "Check": {"CheckID": "job", "Args": ["sh", "-c", script], "Interval": "100ms",
        "SuccessBeforePassing": 3, "FailuresBeforeCritical": 3}});
    put(&client, "/v1/agent/service/register", Some(body)).await;

    wait_status(&client, "job", "passing").await;
    assert!(lines(&runs) >= 3, "passing after only {} runs", lines(&runs));

    let before = lines(&runs);
    std::fs::write(&mode, "2").expect("mode");
    wait_status(&client, "job", "critical").await;
    // The run in flight when the mode changed may still have passed.
    assert!(lines(&runs) >= before + 3, "critical after only {} failing runs", lines(&runs) - before);

    // Exit 1 is warning; FailuresBeforeCritical holds it back the same way.
    std::fs::write(&mode, "0").expect("mode");
    wait_status(&client, "job", "passing").await;
    std::fs::write(&mode, "1").expect("mode");
    wait_status(&client, "job", "warning").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_checks_follow_the_serving_status() {
    let (agent, _data) = single_server("n1", &[]).await;
    let client = agent.client();
    let serving = Arc::new(AtomicU8::new(1));
    let port = census_e2e::backend::grpc_health_server(serving.clone()).await;
    let body = json!({"Name": "rpc", "Port": port,
        "Check": {"CheckID": "rpc", "GRPC": format!("127.0.0.1:{port}/rpc"), "Interval": "100ms"}});
    put(&client, "/v1/agent/service/register", Some(body)).await;
    wait_status(&client, "rpc", "passing").await;
    serving.store(2, Ordering::SeqCst);
    wait_status(&client, "rpc", "critical").await;
    let tls = json!({"Name": "tls", "Check": {"GRPC": "127.0.0.1:1", "GRPCUseTLS": true, "Interval": "1s"}});
    let bytes = serde_json::to_vec(&tls).expect("json");
    let (status, _, _) = client
        .raw(reqwest::Method::PUT, "/v1/agent/service/register", &[], Some(bytes), None)
        .await
        .expect("put");
    assert_eq!(status.as_u16(), 400, "TLS gRPC checks are refused, not silently run in plain text");
}

/// Counts requests; answers 302 to `location` when one is given, else 200.
async fn counting_server(hits: Arc<AtomicUsize>, location: Option<String>) -> u16 {
    let app = axum::Router::new().fallback(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        let location = location.clone();
        async move {
            match location {
                Some(to) => {
                    (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, to)]).into_response()
                }
                None => "ok".into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_check_does_not_follow_a_redirect_to_another_host() {
    let (agent, _data) = single_server("n1", &[]).await;
    let client = agent.client();
    let canary_hits = Arc::new(AtomicUsize::new(0));
    let canary = counting_server(canary_hits.clone(), None).await;
    let redirect_hits = Arc::new(AtomicUsize::new(0));
    let redirector =
        counting_server(redirect_hits.clone(), Some(format!("http://127.0.0.1:{canary}/steal"))).await;
    let body = json!({"Name": "web", "Check": {"CheckID": "web",
        "HTTP": format!("http://127.0.0.1:{redirector}/health"), "Interval": "100ms"}});
    put(&client, "/v1/agent/service/register", Some(body)).await;
    eventually(Duration::from_secs(10), "five checks through the redirector", || async {
        (redirect_hits.load(Ordering::SeqCst) >= 5).then_some(())
    })
    .await;
    assert_eq!(canary_hits.load(Ordering::SeqCst), 0, "the canary on another host:port was reached");
    assert_eq!(check_status(&client, "web").await.as_deref(), Some("critical"));
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_takes_instances_out_of_passing_answers() {
    let (agent, _data) = single_server("n1", &[]).await;
    let client = agent.client();
    let addr = agent.http_addr();
    for name in ["web", "api"] {
        put(&client, "/v1/agent/service/register", Some(json!({"Name": name, "Check": {"TTL": "60s"}})))
            .await;
        put(&client, &format!("/v1/agent/check/pass/service:{name}"), None).await;
    }
    assert_eq!((passing(&client, "web").await, passing(&client, "api").await), (1, 1));
    let census = |args: &[&str]| {
        let out = std::process::Command::new(census_bin())
            .args(["maint", "-http-addr", &addr])
            .args(args)
            .output()
            .expect("census maint");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    census(&["-enable", "-service", "web", "-reason", "deploying v2"]);
    assert_eq!((passing(&client, "web").await, passing(&client, "api").await), (0, 1));
    let listed = census(&[]);
    assert!(listed.contains("ID:     web") && listed.contains("deploying v2"), "{listed}");

    census(&["-enable"]);
    assert_eq!(passing(&client, "api").await, 0, "node maintenance takes every instance out");
    census(&["-disable"]);
    census(&["-disable", "-service", "web"]);
    assert_eq!((passing(&client, "web").await, passing(&client, "api").await), (1, 1));
    assert_eq!(census(&[]), "");

    let (status, _, _) = client
        .raw(
            reqwest::Method::PUT,
            "/v1/agent/service/maintenance/nope",
            &[("enable", "true".into())],
            None,
            None,
        )
        .await
        .expect("put");
    assert_eq!(status.as_u16(), 404);
    let (status, _, _) =
        client.raw(reqwest::Method::PUT, "/v1/agent/maintenance", &[], None, None).await.expect("put");
    assert_eq!(status.as_u16(), 400, "enable is required");
}
