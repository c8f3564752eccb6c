//! The operator inside real `census agent -platform=kubernetes` processes (a 3-server Raft
//! cluster), against the in-memory API server of `census_e2e::fake_kube`. Each server has its
//! own port on the fake API server, so the test sees which server talked to Kubernetes: that
//! only the leader does is what this file shows beyond tests/tests/kube_real_operator.rs, which
//! runs the same scenarios against a real kube-apiserver with the chart's RBAC.

use std::time::Duration;

use census_e2e::fake_kube::FakeKube;
use census_e2e::{Agent, Cluster, eventually, put};
use serde_json::{Value, json};

const CRD: &str = "census.dev/v1alpha1";
const WAIT: Duration = Duration::from_secs(20);

fn pod(name: &str, app: &str, ip: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "web"}]},
        "status": pod_status(ip, ready),
    })
}

fn pod_status(ip: &str, ready: bool) -> Value {
    json!({"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]})
}

fn service_cr(name: &str, spec: Value) -> Value {
    json!({"apiVersion": CRD, "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn kv_cr(name: &str, spec: Value) -> Value {
    json!({"apiVersion": CRD, "kind": "KVEntry", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

async fn get_json(agent: &Agent, path: &str) -> Option<Value> {
    let resp = reqwest::get(format!("http://{}{path}", agent.http_addr())).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

async fn raw_key(agent: &Agent, key: &str) -> Option<String> {
    let resp = reqwest::get(format!("http://{}/v1/kv/{key}?raw", agent.http_addr())).await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    resp.text().await.ok()
}

/// (instance IDs, passing IDs) of a catalog service.
async fn instances(agent: &Agent, service: &str) -> (Vec<String>, Vec<String>) {
    let ids = |v: Option<Value>| -> Vec<String> {
        let mut ids: Vec<String> = v
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["Service"]["ID"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    let all = ids(get_json(agent, &format!("/v1/health/service/{service}")).await);
    let passing = ids(get_json(agent, &format!("/v1/health/service/{service}?passing")).await);
    (all, passing)
}

fn condition(obj: &Value, type_: &str) -> Option<(String, String)> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_).map(|c| {
        (c["status"].as_str().unwrap_or("").to_string(), c["reason"].as_str().unwrap_or("").to_string())
    })
}

struct Env {
    kube: FakeKube,
    cluster: Cluster,
    /// The fake API server's listener of each server, by agent index.
    listeners: Vec<usize>,
}

impl Env {
    async fn start() -> Env {
        let kube = FakeKube::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut configs = Vec::new();
        for i in 0..3 {
            let url = kube.listen().await;
            configs.push(FakeKube::kubeconfig(&url, dir.path(), &format!("node{i}")));
        }
        let cluster = Cluster::start_configured(3, &["-platform=kubernetes"], |i, agent| {
            agent.env.push(("KUBECONFIG".into(), configs[i].display().to_string()));
        })
        .await;
        std::mem::forget(dir);
        Env { kube, cluster, listeners: vec![0, 1, 2] }
    }

    async fn leader(&self) -> usize {
        self.cluster.wait_for_leader(WAIT).await
    }

    fn cr(&self, plural: &str, name: &str) -> Value {
        self.kube.get(CRD, plural, "default", name).unwrap_or(Value::Null)
    }

    /// Waits for the resource's status to satisfy `ok`.
    async fn status(&self, plural: &str, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let obj = self.cr(plural, name);
            if ok(&obj) {
                return obj;
            }
            if std::time::Instant::now() > deadline {
                let requests: Vec<String> =
                    self.kube.requests().iter().rev().take(30).map(|r| format!("{r:?}")).collect();
                panic!(
                    "timed out waiting for {what}\nobject: {obj:#}\nlast requests:\n{}\n{}",
                    requests.join("\n"),
                    self.cluster.diagnostics()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn requests_from(&self, agent: usize) -> usize {
        self.kube.requests().iter().filter(|r| r.listener == self.listeners[agent]).count()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn services_and_keys_follow_their_resources_only_on_the_leader() {
    let env = Env::start().await;
    let leader = env.leader().await;
    let a = &env.cluster.agents[leader];
    let kube = &env.kube;

    kube.apply(pod("web-1", "web", "10.0.0.1", true));
    kube.apply(pod("web-2", "web", "10.0.0.2", true));
    kube.apply(pod("web-3", "web", "10.0.0.3", false));
    kube.apply(pod("db-1", "db", "10.0.1.1", true));
    kube.apply(service_cr("web", json!({"tags": ["v1"], "port": 8080, "selector": {"app": "web"}})));
    kube.apply(service_cr(
        "legacy",
        json!({"name": "legacy-db", "port": 5432, "endpoints": [{"address": "192.0.2.10"}]}),
    ));
    kube.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default"}, "data": {"mode": "blue"}}));
    kube.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"}, "data": {"password": "czNjcjN0"}}));
    kube.apply(kv_cr("greeting", json!({"key": "app/greeting", "value": "hello", "flags": 7})));
    kube.apply(kv_cr(
        "mode",
        json!({"key": "app/mode", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "mode"}}}),
    ));
    kube.apply(kv_cr(
        "password",
        json!({"key": "app/password", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}),
    ));

    // Create: the catalog holds it, the status counts it.
    let web = env
        .status("services", "web", "web Ready with 3 instances, 2 passing", |o| {
            o["status"]["instances"] == 3 && o["status"]["passing"] == 2
        })
        .await;
    assert_eq!(condition(&web, "Ready"), Some(("True".into(), "Passing".into())));
    assert_eq!(condition(&web, "Synced"), Some(("True".into(), "Synced".into())));
    assert_eq!(web["status"]["observedGeneration"], 1);
    assert!(web["status"]["modifyIndex"].as_u64().is_some_and(|i| i > 0));
    assert_eq!(web["metadata"]["finalizers"], json!(["census.dev/catalog"]));
    let (all, passing) = instances(a, "web").await;
    assert_eq!(all, ["default-web-web-1", "default-web-web-2", "default-web-web-3"]);
    assert_eq!(passing, ["default-web-web-1", "default-web-web-2"]);
    let entry = get_json(a, "/v1/catalog/service/web").await.expect("catalog answer");
    assert_eq!(entry[0]["ServiceAddress"], "10.0.0.1");
    assert_eq!(entry[0]["ServicePort"], 8080);
    assert_eq!(entry[0]["ServiceTags"], json!(["v1"]));
    assert_eq!(entry[0]["ServiceMeta"]["census-owner"], "default/web");
    assert_eq!(entry[0]["Node"], "k8s-sync");
    env.status("services", "legacy", "legacy Ready", |o| o["status"]["passing"] == 1).await;
    assert_eq!(instances(a, "legacy-db").await.0, ["default-legacy-192.0.2.10-5432"]);
    for (name, key, value) in [
        ("greeting", "app/greeting", "hello"),
        ("mode", "app/mode", "blue"),
        ("password", "app/password", "s3cr3t"),
    ] {
        let obj = env
            .status("kventries", name, "KVEntry Ready", |o| {
                condition(o, "Ready").is_some_and(|c| c.0 == "True")
            })
            .await;
        assert_eq!(raw_key(a, key).await.as_deref(), Some(value), "{key}");
        assert!(obj["status"]["modifyIndex"].as_u64().is_some());
    }
    let flags = get_json(a, "/v1/kv/app/greeting").await.expect("key")[0]["Flags"].as_u64().expect("flags");
    assert_eq!(flags & 0xffff_ffff, 7, "the user's flags are kept in the low 32 bits");
    let reasons: Vec<String> = kube.events_about("default", "web").into_iter().map(|e| e.0).collect();
    assert!(reasons.contains(&"Synced".to_string()), "events: {reasons:?}");

    // A follower does nothing: only the leader talked to the API server.
    for i in 0..3 {
        let n = env.requests_from(i);
        if i == leader {
            assert!(n > 0, "the leader made no request");
        } else {
            assert_eq!(n, 0, "follower {i} talked to the API server");
        }
    }

    // Update: the catalog follows the spec, the pods and the ConfigMap.
    kube.apply(service_cr("web", json!({"tags": ["v2"], "port": 8080, "selector": {"app": "web"}})));
    kube.set_status("v1", "pods", "default", "web-3", pod_status("10.0.0.3", true));
    kube.delete("v1", "pods", "default", "web-1");
    kube.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default"}, "data": {"mode": "green"}}));
    let web = env
        .status("services", "web", "web at generation 2 with 2 passing", |o| {
            o["status"]["observedGeneration"] == 2
                && o["status"]["instances"] == 2
                && o["status"]["passing"] == 2
        })
        .await;
    assert_eq!(instances(a, "web").await.1, ["default-web-web-2", "default-web-web-3"]);
    let entry = get_json(a, "/v1/catalog/service/web").await.expect("catalog answer");
    assert_eq!(entry[0]["ServiceTags"], json!(["v2"]));
    assert_eq!(condition(&web, "Ready").map(|c| c.0).as_deref(), Some("True"));
    eventually(WAIT, "app/mode follows the ConfigMap", || async {
        (raw_key(a, "app/mode").await.as_deref() == Some("green")).then_some(())
    })
    .await;

    // Drift: a key and an instance changed behind the operator's back are put back, with an Event.
    let client = a.client();
    put(&client, "/v1/kv/app/greeting", Some(json!("tampered"))).await;
    put(
        &client,
        "/v1/catalog/deregister",
        Some(json!({"Node": "k8s-sync", "ServiceID": "default-web-web-2"})),
    )
    .await;
    eventually(WAIT, "app/greeting restored", || async {
        (raw_key(a, "app/greeting").await.as_deref() == Some("hello")).then_some(())
    })
    .await;
    eventually(WAIT, "web-2 restored", || async { (instances(a, "web").await.0.len() == 2).then_some(()) })
        .await;
    eventually(WAIT, "DriftRepaired events", || async {
        let on = |name| kube.events_about("default", name).iter().any(|e| e.0 == "DriftRepaired");
        (on("greeting") && on("web")).then_some(())
    })
    .await;

    // Not its own: a key someone else wrote is left alone and the resource says why.
    put(&client, "/v1/kv/shared/limit", Some(json!("10"))).await;
    kube.apply(kv_cr("limit", json!({"key": "shared/limit", "value": "99"})));
    let limit = env
        .status("kventries", "limit", "KeyNotOwned", |o| {
            condition(o, "Synced").is_some_and(|c| c.1 == "KeyNotOwned")
        })
        .await;
    assert_eq!(condition(&limit, "Ready").map(|c| c.0).as_deref(), Some("False"));
    assert_eq!(raw_key(a, "shared/limit").await.as_deref(), Some("\"10\""));

    // Invalid spec: a condition with the reason, nothing written.
    kube.apply(service_cr(
        "bad",
        json!({"name": "bad name", "port": 80, "endpoints": [{"address": "192.0.2.1"}]}),
    ));
    let bad = env
        .status("services", "bad", "InvalidName", |o| {
            condition(o, "Synced").is_some_and(|c| c.1 == "InvalidName")
        })
        .await;
    assert_eq!(condition(&bad, "Ready").map(|c| c.0).as_deref(), Some("False"));
    assert!(kube.events_about("default", "bad").iter().any(|e| e.0 == "InvalidName"));
    let names = get_json(a, "/v1/catalog/services").await.expect("services");
    assert!(names.get("bad name").is_none() && names.get("bad").is_none(), "{names}");

    // Delete: the finalizer removes what the resource wrote and only that.
    put(
        &client,
        "/v1/catalog/register",
        Some(json!({"Node": "k8s-sync", "Address": "127.0.0.1", "Service": {"ID": "manual", "Service": "manual", "Port": 1}})),
    )
    .await;
    kube.delete(CRD, "services", "default", "web");
    kube.delete(CRD, "kventries", "default", "greeting");
    eventually(WAIT, "web and greeting gone", || async {
        let gone = kube.get(CRD, "services", "default", "web").is_none()
            && kube.get(CRD, "kventries", "default", "greeting").is_none();
        gone.then_some(())
    })
    .await;
    assert!(instances(a, "web").await.0.is_empty());
    assert_eq!(raw_key(a, "app/greeting").await, None);
    assert_eq!(instances(a, "legacy-db").await.0.len(), 1, "another resource's instance stays");
    assert_eq!(instances(a, "manual").await.0, ["manual"], "an instance census did not write stays");
    assert_eq!(raw_key(a, "app/mode").await.as_deref(), Some("green"));

    // Retain: the key outlives its resource, released (census's mark gone from its flags).
    kube.apply(kv_cr(
        "kept",
        json!({"key": "app/kept", "value": "v", "flags": 3, "deletionPolicy": "Retain"}),
    ));
    env.status("kventries", "kept", "kept Ready", |o| condition(o, "Ready").is_some_and(|c| c.0 == "True"))
        .await;
    kube.delete(CRD, "kventries", "default", "kept");
    eventually(WAIT, "kept deleted", || async {
        kube.get(CRD, "kventries", "default", "kept").is_none().then_some(())
    })
    .await;
    let kept = get_json(a, "/v1/kv/app/kept").await.expect("retained key");
    assert_eq!(kept[0]["Flags"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_and_a_failover_deregister_nothing() {
    let mut env = Env::start().await;
    let kube = env.kube.clone();
    for i in 0..5 {
        kube.apply(pod(&format!("api-{i}"), "api", &format!("10.0.2.{i}"), true));
    }
    kube.apply(service_cr("api", json!({"port": 9000, "selector": {"app": "api"}})));
    kube.apply(kv_cr("flag", json!({"key": "feature/flag", "value": "on"})));
    env.status("services", "api", "api with 5 passing", |o| o["status"]["passing"] == 5).await;
    env.status("kventries", "flag", "flag Ready", |o| condition(o, "Ready").is_some_and(|c| c.0 == "True"))
        .await;
    let leader = env.leader().await;
    let before = get_json(&env.cluster.agents[leader], "/v1/catalog/service/api").await.expect("api");
    let create_indexes = |v: &Value| -> Vec<u64> {
        v.as_array().map(|a| a.iter().filter_map(|e| e["CreateIndex"].as_u64()).collect()).unwrap_or_default()
    };
    assert_eq!(create_indexes(&before).len(), 5);

    // Failover: the leader dies; the next one takes over from a cold cache.
    env.cluster.agents[leader].kill();
    let next =
        eventually(WAIT, "a new leader", || async { env.cluster.leader().await.filter(|l| *l != leader) })
            .await;
    kube.apply(service_cr("marker", json!({"port": 1, "endpoints": [{"address": "192.0.2.99"}]})));
    env.status("services", "marker", "the new leader reconciles", |o| o["status"]["instances"] == 1).await;
    let after = get_json(&env.cluster.agents[next], "/v1/catalog/service/api").await.expect("api");
    assert_eq!(
        create_indexes(&after),
        create_indexes(&before),
        "no instance was deregistered and registered again"
    );

    // Restart of every server with the objects in place.
    for agent in env.cluster.agents.iter_mut() {
        agent.kill();
    }
    for agent in env.cluster.agents.iter_mut() {
        agent.start();
    }
    let leader = env.leader().await;
    kube.apply(service_cr("marker2", json!({"port": 1, "endpoints": [{"address": "192.0.2.98"}]})));
    env.status("services", "marker2", "the restarted leader reconciles", |o| o["status"]["instances"] == 1)
        .await;
    let after = get_json(&env.cluster.agents[leader], "/v1/catalog/service/api").await.expect("api");
    assert_eq!(create_indexes(&after), create_indexes(&before), "a restart deregistered nothing");
    assert_eq!(raw_key(&env.cluster.agents[leader], "feature/flag").await.as_deref(), Some("on"));
}
