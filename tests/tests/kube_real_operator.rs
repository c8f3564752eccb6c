//! The operator inside a real `census agent -platform=kubernetes`, against a real kube-apiserver
//! (tests/src/kube_real.rs), as an unprivileged user bound to exactly the RBAC objects the chart
//! renders (scripts/chart_test/rbac_json.py, Helm's own engine): create, update and delete (with
//! finalizers) of Services with static endpoints and pod selectors, KVEntries inline and from a
//! ConfigMap and a Secret, Events; and the same role with one rule removed, which must fail with
//! the 403 named. Pods have no kubelet: the test creates them and patches their status.
//!
//! What only the in-memory API server can do (a follower's silence per listener, injected API
//! errors) stays in tests/tests/operator.rs.

use std::time::{Duration, Instant};

use census_e2e::kube_real::{
    ADMIN_TOKEN, KubeApi, NAMESPACE, OPERATOR_TOKEN, OPERATOR_USER as OPERATOR_USER_NAME, chart_rbac, create,
    install_crds, resources_url, send,
};
use census_e2e::{Agent, Cluster, eventually, put};
use serde_json::{Value, json};

const CRD: &str = "census.dev/v1alpha1";
const WAIT: Duration = Duration::from_secs(30);

struct Env {
    api: KubeApi,
    admin: reqwest::Client,
    cluster: Cluster,
    /// Where the test's resources live.
    ns: String,
}

impl Env {
    /// The API server with the CRDs and `rbac` created, then one census server running the
    /// operator as the chart's service account.
    async fn start(rbac: Vec<Value>) -> Env {
        Env::start_with(rbac, 1, &[], "default").await
    }

    /// As `start`, with `servers` census servers given `flags`, resources in namespace `ns`.
    async fn start_with(rbac: Vec<Value>, servers: usize, flags: &[&str], ns: &str) -> Env {
        let api = KubeApi::start().await;
        let admin = api.client(ADMIN_TOKEN);
        install_crds(&api, &admin).await;
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
        assert_eq!(create(&api, &admin, &namespace).await.0, 201);
        for obj in rbac {
            let (code, body) = create(&api, &admin, &obj).await;
            assert_eq!(code, 201, "{body:#}");
        }
        let kubeconfig = api.kubeconfig(OPERATOR_TOKEN, &api.dir.path().join("operator.kubeconfig"));
        let mut args = vec!["-platform=kubernetes"];
        args.extend_from_slice(flags);
        let cluster = Cluster::start_configured(servers, &args, |_, agent| {
            agent.env.push(("KUBECONFIG".into(), kubeconfig.display().to_string()));
        })
        .await;
        cluster.wait_for_leader(WAIT).await;
        Env { api, admin, cluster, ns: ns.to_string() }
    }

    fn agent(&self) -> &Agent {
        &self.cluster.agents[0]
    }

    fn url(&self, api_version: &str, plural: &str, name: &str) -> String {
        format!("{}/{name}", resources_url(&self.api, api_version, plural, Some(&self.ns)))
    }

    /// A census.dev object of `kind` in the test's namespace.
    fn cr(&self, kind: &str, name: &str, spec: Value) -> Value {
        json!({"apiVersion": CRD, "kind": kind, "metadata": {"name": name, "namespace": self.ns}, "spec": spec})
    }

    async fn get(&self, api_version: &str, plural: &str, name: &str) -> (u16, Value) {
        send(self.admin.get(self.url(api_version, plural, name))).await
    }

    async fn create(&self, obj: Value) {
        let (code, body) = create(&self.api, &self.admin, &obj).await;
        assert_eq!(code, 201, "{body:#}");
    }

    async fn merge_patch(&self, url: String, patch: Value) {
        let request = self
            .admin
            .patch(url)
            .header("content-type", "application/merge-patch+json")
            .body(patch.to_string());
        let (code, body) = send(request).await;
        assert_eq!(code, 200, "{body:#}");
    }

    async fn delete(&self, api_version: &str, plural: &str, name: &str) {
        let (code, body) = send(self.admin.delete(self.url(api_version, plural, name))).await;
        assert!(code == 200 || code == 202, "delete {plural}/{name}: {body:#}");
    }

    /// The reasons of the Events about `name` in the test's namespace (core and events.k8s.io).
    async fn event_reasons(&self, name: &str) -> Vec<String> {
        let mut reasons = Vec::new();
        for (api, field) in [("api/v1", "involvedObject"), ("apis/events.k8s.io/v1", "regarding")] {
            let url = format!("{}/{api}/namespaces/{}/events", self.api.url, self.ns);
            let (_, list) = send(self.admin.get(url)).await;
            for event in list["items"].as_array().into_iter().flatten() {
                if event[field]["name"] == name {
                    reasons.extend(event["reason"].as_str().map(String::from));
                }
            }
        }
        reasons
    }

    /// Waits for the object's state to satisfy `ok`.
    async fn wait_for(
        &self,
        plural: &str,
        name: &str,
        what: &str,
        ok: impl Fn(u16, &Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, obj) = self.get(CRD, plural, name).await;
            if ok(code, &obj) {
                return obj;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nobject ({code}): {obj:#}\nagent log:\n{}",
                tail(&self.agent().log())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().rev().take(40).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

fn pod(ns: &str, name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "web"}]},
    })
}

fn pod_status(ip: &str, ready: bool) -> Value {
    let ready = if ready { "True" } else { "False" };
    json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                      "conditions": [{"type": "Ready", "status": ready}]}})
}

fn reason(obj: &Value, type_: &str) -> Option<String> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?["reason"]
        .as_str()
        .map(String::from)
}

fn condition(obj: &Value, type_: &str) -> Option<String> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?["status"]
        .as_str()
        .map(String::from)
}

async fn get_json(agent: &Agent, path: &str) -> Option<Value> {
    let resp =
        census_e2e::http_client().get(format!("http://{}{path}", agent.http_addr())).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

async fn raw_key(agent: &Agent, key: &str) -> Option<String> {
    let url = format!("http://{}/v1/kv/{key}?raw", agent.http_addr());
    let resp = census_e2e::http_client().get(url).send().await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    resp.text().await.ok()
}

/// The passing instance IDs of a catalog service, sorted.
async fn passing(agent: &Agent, service: &str) -> Vec<String> {
    let entries = get_json(agent, &format!("/v1/health/service/{service}?passing")).await.unwrap_or_default();
    let mut ids: Vec<String> = entries
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["Service"]["ID"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_with_the_charts_rbac_follows_resources_on_a_real_api_server() {
    let env = Env::start(chart_rbac("cluster")).await;
    let a = env.agent();

    for (name, ip) in [("web-1", "10.0.0.1"), ("web-2", "10.0.0.2")] {
        env.create(pod(&env.ns, name, "web")).await;
        env.merge_patch(format!("{}/status", env.url("v1", "pods", name)), pod_status(ip, true)).await;
    }
    env.create(env.cr("Service", "web", json!({"tags": ["v1"], "port": 8080, "selector": {"app": "web"}})))
        .await;
    env.create(env.cr(
        "Service",
        "legacy",
        json!({"name": "legacy-db", "port": 5432, "endpoints": [{"address": "192.0.2.10"}]}),
    ))
    .await;
    env.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": env.ns}, "data": {"mode": "blue"}}))
        .await;
    env.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": env.ns}, "data": {"password": "czNjcjN0"}}))
        .await;
    env.create(env.cr("KVEntry", "greeting", json!({"key": "app/greeting", "value": "hello"}))).await;
    env.create(env.cr(
        "KVEntry",
        "mode",
        json!({"key": "app/mode", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "mode"}}}),
    ))
    .await;
    env.create(env.cr(
        "KVEntry",
        "password",
        json!({"key": "app/password", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}),
    ))
    .await;

    // Create: the catalog holds them, the status says so, the finalizer is on.
    let web =
        env.wait_for("services", "web", "web Ready with 2 passing", |_, o| o["status"]["passing"] == 2).await;
    assert_eq!(condition(&web, "Ready").as_deref(), Some("True"), "{web:#}");
    assert_eq!(web["metadata"]["finalizers"], json!(["census.dev/catalog"]));
    assert_eq!(passing(a, "web").await, ["default-web-web-1", "default-web-web-2"]);
    env.wait_for("services", "legacy", "legacy Ready", |_, o| o["status"]["passing"] == 1).await;
    for (name, key, value) in [
        ("greeting", "app/greeting", "hello"),
        ("mode", "app/mode", "blue"),
        ("password", "app/password", "s3cr3t"),
    ] {
        env.wait_for("kventries", name, "KVEntry Ready", |_, o| {
            condition(o, "Ready").as_deref() == Some("True")
        })
        .await;
        assert_eq!(raw_key(a, key).await.as_deref(), Some(value), "{key}");
    }
    let reasons = env.event_reasons("web").await;
    assert!(
        reasons.iter().any(|r| r == "Synced"),
        "the operator wrote a Synced Event about web: {reasons:?}"
    );

    // Update: a pod turns unready and the ConfigMap changes; the catalog follows.
    env.merge_patch(format!("{}/status", env.url("v1", "pods", "web-2")), pod_status("10.0.0.2", false))
        .await;
    env.merge_patch(env.url("v1", "configmaps", "app"), json!({"data": {"mode": "green"}})).await;
    env.wait_for("services", "web", "web with 1 passing", |_, o| o["status"]["passing"] == 1).await;
    assert_eq!(passing(a, "web").await, ["default-web-web-1"]);
    eventually(WAIT, "app/mode follows the ConfigMap", || async {
        (raw_key(a, "app/mode").await.as_deref() == Some("green")).then_some(())
    })
    .await;

    // Drift: what someone changed in the catalog behind the operator's back is put back, and an
    // Event says so.
    let client = a.client();
    put(&client, "/v1/kv/app/greeting", Some(json!("tampered"))).await;
    put(
        &client,
        "/v1/catalog/deregister",
        Some(json!({"Node": "k8s-sync", "ServiceID": "default-web-web-1"})),
    )
    .await;
    eventually(WAIT, "app/greeting restored", || async {
        (raw_key(a, "app/greeting").await.as_deref() == Some("hello")).then_some(())
    })
    .await;
    eventually(WAIT, "web-1 restored", || async {
        (passing(a, "web").await == ["default-web-web-1"]).then_some(())
    })
    .await;
    eventually(WAIT, "DriftRepaired events", || async {
        let greeting = env.event_reasons("greeting").await.iter().any(|r| r == "DriftRepaired");
        let web = env.event_reasons("web").await.iter().any(|r| r == "DriftRepaired");
        (greeting && web).then_some(())
    })
    .await;

    // A person applies the same Service with server-side apply, as `kubectl apply --server-side`
    // does (field manager "kubectl"): the operator follows the new spec, and neither the person's
    // label nor the operator's finalizer and status is lost.
    let applied = json!({
        "apiVersion": CRD, "kind": "Service",
        "metadata": {"name": "web", "namespace": env.ns, "labels": {"team": "shop"}},
        "spec": {"tags": ["v2"], "port": 8080, "selector": {"app": "web"}},
    });
    let request = env
        .admin
        .patch(format!("{}?fieldManager=kubectl&force=true", env.url(CRD, "services", "web")))
        .header("content-type", "application/apply-patch+yaml")
        .body(applied.to_string());
    let (code, body) = send(request).await;
    assert_eq!(code, 200, "{body:#}");
    let web = env
        .wait_for("services", "web", "web at generation 2", |_, o| {
            o["status"]["observedGeneration"] == 2 && o["status"]["passing"] == 1
        })
        .await;
    eventually(WAIT, "the catalog's tags follow the applied spec", || async {
        let entry = get_json(a, "/v1/catalog/service/web").await?;
        (entry[0]["ServiceTags"] == json!(["v2"])).then_some(())
    })
    .await;
    assert_eq!(web["metadata"]["labels"]["team"], "shop", "the person's label stays: {web:#}");
    assert_eq!(
        web["metadata"]["finalizers"],
        json!(["census.dev/catalog"]),
        "the operator's finalizer stays"
    );
    let managers: Vec<&str> = web["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"kubectl") && managers.len() >= 2,
        "both field managers recorded: {managers:?}"
    );

    // Not its own: a key someone else wrote is left alone, and the resource says why.
    put(&client, "/v1/kv/shared/limit", Some(json!("10"))).await;
    env.create(env.cr("KVEntry", "limit", json!({"key": "shared/limit", "value": "99"}))).await;
    let limit = env
        .wait_for("kventries", "limit", "KeyNotOwned", |_, o| {
            reason(o, "Synced").as_deref() == Some("KeyNotOwned")
        })
        .await;
    assert_eq!(condition(&limit, "Ready").as_deref(), Some("False"));
    assert_eq!(raw_key(a, "shared/limit").await.as_deref(), Some("\"10\""));

    // A spec the schema admits but census refuses: a condition with the reason, nothing written.
    env.create(env.cr(
        "Service",
        "bad",
        json!({"name": "bad name", "port": 80, "endpoints": [{"address": "192.0.2.1"}]}),
    ))
    .await;
    let bad = env
        .wait_for("services", "bad", "InvalidName", |_, o| {
            reason(o, "Synced").as_deref() == Some("InvalidName")
        })
        .await;
    assert_eq!(condition(&bad, "Ready").as_deref(), Some("False"));

    // Delete: the finalizer holds the object until the catalog is clean, then it is gone.
    env.delete(CRD, "services", "web").await;
    env.delete(CRD, "kventries", "greeting").await;
    env.wait_for("services", "web", "web deleted", |code, _| code == 404).await;
    env.wait_for("kventries", "greeting", "greeting deleted", |code, _| code == 404).await;
    assert!(passing(a, "web").await.is_empty(), "web's instances left the catalog");
    assert_eq!(raw_key(a, "app/greeting").await, None, "a deleted KVEntry (Delete policy) takes its key");

    // Retain: the key outlives its resource, released (census's mark gone from its flags).
    let kept = json!({"key": "app/kept", "value": "v", "flags": 3, "deletionPolicy": "Retain"});
    env.create(env.cr("KVEntry", "kept", kept)).await;
    env.wait_for("kventries", "kept", "kept Ready", |_, o| condition(o, "Ready").as_deref() == Some("True"))
        .await;
    env.delete(CRD, "kventries", "kept").await;
    env.wait_for("kventries", "kept", "kept deleted", |code, _| code == 404).await;
    let kept = get_json(a, "/v1/kv/app/kept").await.expect("the retained key");
    assert_eq!(kept[0]["Flags"], 3);

    let (requests, refused) = env.api.operator_requests();
    assert!(requests > 0, "the audit log records the operator's requests");
    assert_eq!(refused, 0, "the API server refused none of the operator's {requests} requests");
    let log = a.log();
    assert!(!log.contains("forbidden"), "no request was refused:\n{}", tail(&log));
}

/// The chart's ClusterRole without its `pods` rule: the operator cannot follow a selector, and
/// says which permission it lacks (so every rule the chart grants is one the operator uses).
#[tokio::test(flavor = "multi_thread")]
async fn the_charts_rbac_without_the_pods_rule_fails_with_the_403_named() {
    let mut rbac = chart_rbac("cluster");
    for obj in &mut rbac {
        if obj["kind"] == "ClusterRole"
            && let Some(rules) = obj["rules"].as_array_mut()
        {
            rules.retain(|r| r["resources"] != json!(["pods"]));
        }
    }
    let env = Env::start(rbac).await;
    env.create(env.cr("Service", "web", json!({"port": 8080, "selector": {"app": "web"}}))).await;
    let refusal = eventually(WAIT, "the operator's log to name the refused permission", || async {
        env.agent()
            .log()
            .lines()
            .find(|l| l.contains("forbidden") && l.contains("\"pods\""))
            .map(String::from)
    })
    .await;
    assert!(refusal.contains(OPERATOR_USER_NAME), "the refusal names the operator's identity: {refusal}");
    assert!(env.api.operator_requests().1 > 0, "the API server's audit log has the 403s too");
    let (_, web) = env.get(CRD, "services", "web").await;
    assert_ne!(
        condition(&web, "Ready").as_deref(),
        Some("True"),
        "web cannot be Ready without pods: {web:#}"
    );
}

/// `rbac.scope=namespace`: the chart's Role and RoleBinding in the release namespace, the operator
/// started as the chart starts it then (`-watch-namespace`): resources there are followed with no
/// request refused, and resources elsewhere are not the operator's business.
#[tokio::test(flavor = "multi_thread")]
async fn the_charts_namespaced_role_is_enough_for_its_namespace() {
    let rbac = chart_rbac("namespace");
    assert!(rbac.iter().any(|o| o["kind"] == "Role") && rbac.iter().all(|o| o["kind"] != "ClusterRole"));
    let watch = format!("-watch-namespace={NAMESPACE}");
    let env = Env::start_with(rbac, 1, &[&watch], NAMESPACE).await;
    let a = env.agent();
    env.create(pod(&env.ns, "api-1", "api")).await;
    env.merge_patch(format!("{}/status", env.url("v1", "pods", "api-1")), pod_status("10.0.3.1", true)).await;
    env.create(env.cr("Service", "api", json!({"port": 9000, "selector": {"app": "api"}}))).await;
    env.create(env.cr("KVEntry", "flag", json!({"key": "feature/flag", "value": "on"}))).await;
    env.wait_for("services", "api", "api with 1 passing", |_, o| o["status"]["passing"] == 1).await;
    env.wait_for("kventries", "flag", "flag Ready", |_, o| condition(o, "Ready").as_deref() == Some("True"))
        .await;
    assert_eq!(passing(a, "api").await, [format!("{NAMESPACE}-api-api-1")]);
    assert_eq!(raw_key(a, "feature/flag").await.as_deref(), Some("on"));

    // A resource in another namespace: the Role grants nothing there, and the operator leaves it.
    let elsewhere = json!({"apiVersion": CRD, "kind": "KVEntry", "metadata": {"name": "other", "namespace": "default"},
                           "spec": {"key": "other/key", "value": "x"}});
    env.create(elsewhere).await;
    env.create(env.cr("KVEntry", "marker", json!({"key": "feature/marker", "value": "m"}))).await;
    env.wait_for("kventries", "marker", "marker Ready", |_, o| {
        condition(o, "Ready").as_deref() == Some("True")
    })
    .await;
    assert_eq!(
        raw_key(a, "other/key").await,
        None,
        "a resource outside the watched namespace is not reconciled"
    );
    assert_eq!(env.api.operator_requests().1, 0, "the Role was enough: nothing refused");
    let log = a.log();
    assert!(!log.contains("forbidden"), "no request was refused:\n{}", tail(&log));
}

/// Three census servers: the leader dies and the next takes over from a cold cache; then every
/// server restarts. Nothing is deregistered and registered again (the instances keep their
/// CreateIndex), and the operator keeps reconciling.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_and_a_full_restart_deregister_nothing() {
    let mut env = Env::start_with(chart_rbac("cluster"), 3, &[], "default").await;
    for i in 0..3 {
        let name = format!("api-{i}");
        env.create(pod(&env.ns, &name, "api")).await;
        env.merge_patch(
            format!("{}/status", env.url("v1", "pods", &name)),
            pod_status(&format!("10.0.2.{i}"), true),
        )
        .await;
    }
    env.create(env.cr("Service", "api", json!({"port": 9000, "selector": {"app": "api"}}))).await;
    env.wait_for("services", "api", "api with 3 passing", |_, o| o["status"]["passing"] == 3).await;
    let leader = env.cluster.wait_for_leader(WAIT).await;
    let create_indexes = |v: &Value| -> Vec<u64> {
        let mut indexes: Vec<u64> = v
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["CreateIndex"].as_u64()).collect())
            .unwrap_or_default();
        indexes.sort();
        indexes
    };
    let before =
        create_indexes(&get_json(&env.cluster.agents[leader], "/v1/catalog/service/api").await.expect("api"));
    assert_eq!(before.len(), 3);

    env.cluster.agents[leader].kill();
    let next =
        eventually(WAIT, "a new leader", || async { env.cluster.leader().await.filter(|l| *l != leader) })
            .await;
    env.create(env.cr("Service", "marker", json!({"port": 1, "endpoints": [{"address": "192.0.2.99"}]})))
        .await;
    env.wait_for("services", "marker", "the new leader reconciles", |_, o| o["status"]["instances"] == 1)
        .await;
    let after = get_json(&env.cluster.agents[next], "/v1/catalog/service/api").await.expect("api");
    assert_eq!(create_indexes(&after), before, "a failover deregistered nothing");

    for agent in env.cluster.agents.iter_mut() {
        agent.kill();
    }
    for agent in env.cluster.agents.iter_mut() {
        agent.start();
    }
    let leader = env.cluster.wait_for_leader(WAIT).await;
    env.create(env.cr("Service", "marker2", json!({"port": 1, "endpoints": [{"address": "192.0.2.98"}]})))
        .await;
    env.wait_for("services", "marker2", "the restarted leader reconciles", |_, o| {
        o["status"]["instances"] == 1
    })
    .await;
    let after = get_json(&env.cluster.agents[leader], "/v1/catalog/service/api").await.expect("api");
    assert_eq!(create_indexes(&after), before, "a full restart deregistered nothing");
}

/// A namespace deleted with kube-controller-manager running: the namespace controller deletes its
/// resources, the operator's finalizers take their instances and keys out of the catalog, and the
/// namespace is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_namespace_takes_its_instances_and_keys_out_of_the_catalog() {
    let mut env = Env::start_with(chart_rbac("cluster"), 1, &[], "shop").await;
    env.api.start_controller_manager();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    assert_eq!(create(&env.api, &env.admin, &namespace).await.0, 201);
    let a = env.agent();
    env.create(env.cr("Service", "cart", json!({"port": 80, "endpoints": [{"address": "192.0.2.20"}]})))
        .await;
    env.create(env.cr("KVEntry", "cart-mode", json!({"key": "shop/cart/mode", "value": "fast"}))).await;
    env.wait_for("services", "cart", "cart Ready", |_, o| o["status"]["passing"] == 1).await;
    env.wait_for("kventries", "cart-mode", "cart-mode Ready", |_, o| {
        condition(o, "Ready").as_deref() == Some("True")
    })
    .await;
    assert_eq!(passing(a, "cart").await.len(), 1);

    let url = format!("{}/shop", resources_url(&env.api, "v1", "namespaces", None));
    let (code, body) = send(env.admin.delete(&url)).await;
    assert_eq!(code, 200, "{body:#}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while send(env.admin.get(&url)).await.0 != 404 {
        assert!(
            Instant::now() < deadline,
            "namespace shop not gone in 120 s\ncontroller-manager:\n{}\nagent:\n{}",
            env.api.controller_manager_log_tail(),
            tail(&a.log())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(passing(a, "cart").await.is_empty(), "the namespace's instances left the catalog");
    assert_eq!(raw_key(a, "shop/cart/mode").await, None, "the namespace's keys left the catalog");
}
