//! Reconcile throughput on a real kube-apiserver (tests/src/kube_real.rs): N Service resources
//! (half with a static endpoint, half selecting a pod created through the API and marked Ready
//! by patching its status), reconciled into a 3-server cluster by the operator bound to the
//! chart's ClusterRole. Prints the time from the first create to every resource Ready with its
//! instance in the catalog, the operator's requests (from the API server's audit log) and the
//! leader's memory (docs/benchmarks.md); asserts only that every resource gets there.
//! `OPERATOR_BENCH_N` (default 300; 1,000 for the documented figure); release figures:
//! `CENSUS_BIN=target/release/census cargo test --release -p census-e2e --test kube_real_throughput -- --nocapture`

use std::time::{Duration, Instant};

use census_e2e::Cluster;
use census_e2e::kube_real::{
    ADMIN_TOKEN, KubeApi, NAMESPACE, OPERATOR_TOKEN, chart_rbac, create, install_crds, resources_url, send,
};
use futures::StreamExt;
use serde_json::{Value, json};

/// What the test command runs (a few seconds); the figure in docs/benchmarks.md is N = 1,000.
const DEFAULT_N: usize = 300;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread")]
async fn services_reconcile_into_the_catalog_from_a_real_api_server() {
    let n: usize = std::env::var("OPERATOR_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_N);
    let api = KubeApi::start().await;
    let admin = api.client(ADMIN_TOKEN);
    install_crds(&api, &admin).await;
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    assert_eq!(create(&api, &admin, &namespace).await.0, 201);
    for obj in chart_rbac("cluster") {
        assert_eq!(create(&api, &admin, &obj).await.0, 201);
    }
    let kubeconfig = api.kubeconfig(OPERATOR_TOKEN, &api.dir.path().join("operator.kubeconfig"));
    let cluster = Cluster::start_configured(3, &["-platform=kubernetes"], |_, agent| {
        agent.env.push(("KUBECONFIG".into(), kubeconfig.display().to_string()));
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;

    let started = Instant::now();
    let pods = resources_url(&api, "v1", "pods", Some("default"));
    futures::stream::iter(0..n)
        .map(|i| {
            let (api, admin, pods) = (&api, &admin, &pods);
            async move {
                let spec = if i % 2 == 0 {
                    json!({"port": 80, "tags": ["bench"], "endpoints": [{"address": format!("10.9.{}.{}", i / 250, i % 250)}]})
                } else {
                    let pod = json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": format!("p{i}"), "namespace": "default", "labels": {"app": format!("s{i}")}},
                        "spec": {"containers": [{"name": "app", "image": "web"}]}});
                    assert_eq!(create(api, admin, &pod).await.0, 201);
                    let ip = format!("10.8.{}.{}", i / 250, i % 250);
                    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                                                   "conditions": [{"type": "Ready", "status": "True"}]}});
                    let request = admin
                        .patch(format!("{pods}/p{i}/status"))
                        .header("content-type", "application/merge-patch+json")
                        .body(status.to_string());
                    assert_eq!(send(request).await.0, 200);
                    json!({"port": 80, "tags": ["bench"], "selector": {"app": format!("s{i}")}})
                };
                let service = json!({"apiVersion": "census.dev/v1alpha1", "kind": "Service",
                    "metadata": {"name": format!("s{i}"), "namespace": "default"}, "spec": spec});
                assert_eq!(create(api, admin, &service).await.0, 201);
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let applied = started.elapsed();
    let services_url = resources_url(&api, "census.dev/v1alpha1", "services", Some("default"));
    let deadline = Instant::now()
        + Duration::from_secs(
            std::env::var("OPERATOR_BENCH_WAIT").ok().and_then(|v| v.parse().ok()).unwrap_or(600),
        );
    loop {
        let (_, list) = send(admin.get(&services_url)).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let waiting = items.iter().filter(|s| s["status"]["passing"] != 1).count();
        if waiting == 0 && items.len() == n {
            break;
        }
        if Instant::now() >= deadline {
            let first = items.iter().find(|s| s["status"]["passing"] != 1).cloned().unwrap_or(Value::Null);
            panic!(
                "{waiting} of {n} Services not Ready in time; first: {first:#}\n{}",
                cluster.diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_ready = started.elapsed();
    let http = cluster.agents[leader].http_addr();
    let services: Value = census_e2e::http_client()
        .get(format!("http://{http}/v1/catalog/services"))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("json");
    let bench = services.as_object().map_or(0, |m| m.values().filter(|t| *t == &json!(["bench"])).count());
    assert_eq!(bench, n, "every resource is a catalog service");
    let (requests, refused) = api.operator_requests();
    assert_eq!(refused, 0, "the chart's ClusterRole was enough");
    let rss = cluster.agents[leader].pid().map_or(0.0, rss_mib);
    println!(
        "operator throughput (real kube-apiserver 1.20.2): {n} Service resources created in {:.2} s; all Ready with \
         their instance after {:.2} s ({:.0} resources/s); the operator made {requests} API requests; leader RSS {rss:.0} MiB",
        applied.as_secs_f64(),
        all_ready.as_secs_f64(),
        n as f64 / all_ready.as_secs_f64()
    );
}
