//! Reconcile throughput: 1,000 Service resources (one static endpoint each) and 1,000 selected
//! pods reconciled into a 3-server cluster through the in-memory API server. Prints the time
//! from the first `kubectl apply` to every resource Ready with its instance in the catalog
//! (docs/benchmarks.md); asserts only that all of them get there.
//! `CENSUS_BIN=target/release/census cargo test --release -p census-e2e --test operator_throughput -- --nocapture`

use std::time::{Duration, Instant};

use census_e2e::Cluster;
use census_e2e::fake_kube::FakeKube;
use serde_json::{Value, json};

const DEFAULT_N: usize = 1000;

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_services_reconcile_into_the_catalog() {
    let n: usize = std::env::var("OPERATOR_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_N);
    let kube = FakeKube::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = kube.listen().await;
    let config = FakeKube::kubeconfig(&url, dir.path(), "census");
    let cluster = Cluster::start_configured(3, &["-platform=kubernetes"], |_, agent| {
        agent.env.push(("KUBECONFIG".into(), config.display().to_string()));
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    let http = cluster.agents[leader].http_addr();

    let started = Instant::now();
    for i in 0..n {
        let spec = if i % 2 == 0 {
            json!({"port": 80, "tags": ["bench"], "endpoints": [{"address": format!("10.9.{}.{}", i / 250, i % 250)}]})
        } else {
            kube.apply(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("p{i}"), "namespace": "default", "labels": {"app": format!("s{i}")}},
                "status": {"phase": "Running", "podIP": format!("10.8.{}.{}", i / 250, i % 250),
                           "conditions": [{"type": "Ready", "status": "True"}]},
            }));
            json!({"port": 80, "tags": ["bench"], "selector": {"app": format!("s{i}")}})
        };
        kube.apply(json!({"apiVersion": "census.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": format!("s{i}"), "namespace": "default"}, "spec": spec}));
    }
    let applied = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let services = kube.list("census.dev/v1alpha1", "services", Some("default"));
        let waiting: Vec<&Value> = services.iter().filter(|s| s["status"]["passing"] != 1).collect();
        if waiting.is_empty() && services.len() == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} Services not Ready after 300 s; first: {:#}\n{}",
            waiting.len(),
            waiting.first().copied().unwrap_or(&Value::Null),
            cluster.diagnostics()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_ready = started.elapsed();
    let services: Value = reqwest::get(format!("http://{http}/v1/catalog/services"))
        .await
        .expect("catalog")
        .json()
        .await
        .expect("json");
    let bench = services.as_object().map_or(0, |m| m.values().filter(|t| *t == &json!(["bench"])).count());
    assert_eq!(bench, n, "every resource is a catalog service");
    let requests = kube.requests().len();
    println!(
        "operator throughput: {n} Service resources applied in {:.2} s; all Ready with their instance after {:.2} s \
         ({:.0} resources/s); {requests} API requests",
        applied.as_secs_f64(),
        all_ready.as_secs_f64(),
        n as f64 / all_ready.as_secs_f64()
    );
}
