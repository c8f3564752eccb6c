//! Consul endpoints that py-consul's suite and the Go client replay do not reach, answered as
//! Consul answers them: agent health by ID and name, `?hash=` blocking, `/v1/agent/version`,
//! `/v1/agent/monitor`, `?near=`/`?node-meta=`/`?peer=`, the Connect reads, prepared queries,
//! autopilot state, and user events handed between servers.

use std::time::Duration;

use census_e2e::{Cluster, eventually, single_server};
use futures::StreamExt;
use serde_json::{Value, json};

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(addr: &str) -> Api {
        Api { http: census_e2e::http_client(), base: format!("http://{addr}") }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.expect("body"))
    }

    async fn put(&self, path: &str, body: Value) -> String {
        let (status, _, text) = self.call(reqwest::Method::PUT, path, Some(body)).await;
        assert!((200..300).contains(&status), "PUT {path}: {status} {text}");
        text
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, text) = self.call(reqwest::Method::GET, path, None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_health_hash_blocking_version_and_monitor() {
    let (agent, _dir) = single_server("endpoints", &[]).await;
    let api = Api::new(&agent.http_addr());
    let (_, version) = api.get("/v1/agent/version").await;
    assert!(version["HumanVersion"].as_str().is_some_and(|v| v.starts_with("1.22.0+census")), "{version}");
    let (_, host) = api.get("/v1/agent/host").await;
    assert!(host["Memory"]["total"].as_u64().is_some_and(|t| t > 0), "{host}");
    assert!(host["Disk"]["total"].as_u64().is_some_and(|t| t > 0), "{host}");
    assert!(host["CPU"].as_array().is_some_and(|c| !c.is_empty()), "{host}");
    assert_eq!(host["Errors"], Value::Null);

    // The monitor shows what the agent logs from now on; a bad level is refused before streaming.
    let (status, _) = api.get("/v1/agent/monitor?loglevel=loud").await;
    assert_eq!(status, 400);
    let monitor =
        api.http.get(format!("{}/v1/agent/monitor?loglevel=debug", api.base)).send().await.expect("monitor");
    assert_eq!(monitor.status(), 200);
    let mut lines = monitor.bytes_stream();

    let web =
        json!({"ID": "web-1", "Name": "web", "Port": 80, "Check": {"CheckID": "web-1-ttl", "TTL": "30s"}});
    api.put("/v1/agent/service/register", web.clone()).await;
    let mut seen = String::new();
    while !seen.contains("agent: Synced service 'web-1'") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(20), lines.next()).await.expect("a log line in time");
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("stream open").expect("chunk")));
    }
    assert!(seen.contains("[INFO]  agent: Synced service 'web-1'"), "Consul's line format: {seen}");

    // Health by ID: the status code carries the aggregate.
    let by_id = "/v1/agent/health/service/id/web-1";
    let (status, body) = api.get(by_id).await;
    assert_eq!((status, &body["AggregatedStatus"]), (503, &json!("critical")), "a TTL check starts critical");
    api.put("/v1/agent/check/warn/web-1-ttl", Value::Null).await;
    let (_, _, text) = api.call(reqwest::Method::GET, &format!("{by_id}?format=text"), None).await;
    assert_eq!(text, "warning");
    assert_eq!(api.get(by_id).await.0, 429);
    api.put("/v1/agent/check/pass/web-1-ttl", Value::Null).await;
    let (status, body) = api.get(by_id).await;
    assert_eq!((status, &body["Service"]["ID"]), (200, &json!("web-1")));
    assert_eq!(api.get("/v1/agent/health/service/id/nope").await.0, 404);

    // By name: one entry per instance, the worst one decides.
    api.put("/v1/agent/service/register", json!({"ID": "web-2", "Name": "web", "Port": 81})).await;
    let (status, body) = api.get("/v1/agent/health/service/name/web").await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)));
    api.put("/v1/agent/service/maintenance/web-2?enable=true&reason=deploy", Value::Null).await;
    let (status, body) = api.get("/v1/agent/health/service/name/web").await;
    assert_eq!(status, 503);
    assert!(
        body.as_array().expect("entries").iter().any(|e| e["AggregatedStatus"] == "maintenance"),
        "{body}"
    );
    assert_eq!(api.get("/v1/agent/health/service/name/nope").await.0, 404);

    // ?hash= waits for the service to change, then answers with the new hash.
    let (_, headers, text) = api.call(reqwest::Method::GET, "/v1/agent/service/web-1", None).await;
    let hash = serde_json::from_str::<Value>(&text).expect("service")["ContentHash"]
        .as_str()
        .expect("hash")
        .to_string();
    assert_eq!(headers.get("X-Consul-ContentHash").and_then(|h| h.to_str().ok()), Some(hash.as_str()));
    let waiter = {
        let (http, url) =
            (api.http.clone(), format!("{}/v1/agent/service/web-1?hash={hash}&wait=60s", api.base));
        tokio::spawn(async move {
            http.get(url).send().await.expect("blocking read").json::<Value>().await.expect("json")
        })
    };
    let mut changed = web.clone();
    changed["Tags"] = json!(["v2"]);
    api.put("/v1/agent/service/register", changed).await;
    let after = waiter.await.expect("waiter");
    assert_eq!(after["Tags"], json!(["v2"]));
    assert_ne!(after["ContentHash"], json!(hash));
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_selection_and_connect_reads() {
    let (agent, _dir) = single_server("connect", &[]).await;
    let api = Api::new(&agent.http_addr());
    let node = |name: &str, rack: &str, service: Value| json!({"Node": name, "Address": "10.0.0.1", "NodeMeta": {"rack": rack}, "Service": service});
    api.put("/v1/catalog/register", node("n1", "r1", json!({"Service": "web", "Port": 80}))).await;
    api.put("/v1/catalog/register", node("n2", "r2", json!({"Service": "web", "Port": 80}))).await;
    let proxy = json!({"ID": "web-proxy", "Service": "web-sidecar-proxy", "Kind": "connect-proxy", "Port": 21000,
        "Proxy": {"destination_service_name": "web", "local_service_port": 80}});
    api.put("/v1/catalog/register", node("n2", "r2", proxy)).await;
    let native = json!({"Service": "api", "Port": 90, "Connect": {"Native": true}});
    api.put("/v1/catalog/register", node("n1", "r1", native)).await;

    let nodes = |v: &Value| v.as_array().expect("list").iter().map(|r| r["Node"].clone()).collect::<Vec<_>>();
    let (_, found) = api.get("/v1/catalog/service/web?node-meta=rack:r2").await;
    assert_eq!(nodes(&found), [json!("n2")]);
    let (_, found) = api.get("/v1/catalog/service/web?near=n2").await;
    assert_eq!(nodes(&found), [json!("n2"), json!("n1")], "the near node first");
    let (_, found) = api.get("/v1/catalog/nodes?node-meta=rack:r1&node-meta=rack:r1").await;
    assert_eq!(nodes(&found), [json!("n1")]);
    let (_, found) = api.get("/v1/health/service/web?peer=elsewhere").await;
    assert_eq!(found, json!([]), "no peerings: a peer's instances are none");

    let (_, proxies) = api.get("/v1/catalog/connect/web").await;
    assert_eq!(proxies[0]["ServiceID"], "web-proxy");
    assert_eq!(
        proxies[0]["ServiceProxy"]["DestinationServiceName"], "web",
        "snake_case keys are Consul's names"
    );
    assert_eq!(proxies.as_array().map(Vec::len), Some(1));
    let (_, entries) = api.get("/v1/health/connect/web").await;
    assert_eq!(entries[0]["Service"]["Kind"], "connect-proxy");
    let (_, natives) = api.get("/v1/catalog/connect/api").await;
    assert_eq!(natives[0]["ServiceConnect"], json!({"Native": true}));
    let (_, plain) = api.get("/v1/catalog/service/web").await;
    assert_eq!(
        plain[0]["ServiceProxy"],
        json!({"Mode": "", "MeshGateway": {}, "Expose": {}}),
        "Consul's empty proxy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_queries_autopilot_state_and_events_across_servers() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let api = Api::new(&cluster.agents[leader].http_addr());
    for (id, tag, status) in
        [("db-1", "primary", "passing"), ("db-2", "replica", "warning"), ("db-3", "replica", "critical")]
    {
        let reg = json!({"ID": id, "Name": "db", "Tags": [tag], "Port": 5432, "Check": {"CheckID": id, "TTL": "60s", "Status": status}});
        api.put("/v1/agent/service/register", reg).await;
    }
    let created: Value = serde_json::from_str(
        &api.call(
            reqwest::Method::POST,
            "/v1/query",
            Some(json!({
                "Name": "db-any", "Service": {"Service": "db"}, "DNS": {"TTL": "10s"}
            })),
        )
        .await
        .2,
    )
    .expect("created");
    let id = created["ID"].as_str().expect("ID").to_string();
    let ids = |v: &Value| {
        let mut ids: Vec<String> = v["Nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|e| e["Service"]["ID"].as_str().unwrap_or("").to_string())
            .collect();
        ids.sort();
        ids
    };
    let (_, run) = api.get("/v1/query/db-any/execute").await;
    assert_eq!(
        ids(&run),
        ["db-1", "db-2"],
        "critical instances are left out; warning ones stay without OnlyPassing"
    );
    assert_eq!((run["Failovers"].clone(), run["DNS"]["TTL"].clone()), (json!(0), json!("10s")));
    api.put(
        &format!("/v1/query/{id}"),
        json!({"Name": "db-any", "Service": {"Service": "db", "OnlyPassing": true, "Tags": ["!replica"]}}),
    )
    .await;
    let (_, run) = api.get(&format!("/v1/query/{id}/execute")).await;
    assert_eq!(ids(&run), ["db-1"]);
    let (_, listed) = api.get("/v1/query").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let template = json!({"Name": "db-", "Template": {"Type": "name_prefix_match"}, "Service": {"Service": "${name.suffix}"}});
    let (status, _, text) = api.call(reqwest::Method::POST, "/v1/query", Some(template)).await;
    assert_eq!(status, 200, "{text}");
    let (_, explained) = api.get("/v1/query/db-db/explain").await;
    assert_eq!(explained["Query"]["Service"]["Service"], "db", "the template filled in for the name asked");
    let (status, _, _) = api.call(reqwest::Method::DELETE, &format!("/v1/query/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(api.get(&format!("/v1/query/{id}")).await.0, 404);
    let (status, _, text) =
        api.call(reqwest::Method::POST, "/v1/query", Some(json!({"Name": "x", "Service": {}}))).await;
    assert_eq!(
        (status, text.as_str()),
        (500, "Invalid prepared query: Must provide a Service name to query")
    );

    let (_, state) = api.get("/v1/operator/autopilot/state").await;
    assert_eq!(state["Servers"].as_object().map(|s| s.len()), Some(3));
    assert!(state["Leader"].as_str().is_some_and(|l| !l.is_empty()), "{state}");

    // An event fired on one server reaches the others.
    let fired: Value =
        serde_json::from_str(&api.put("/v1/event/fire/deploy", json!("v2")).await).expect("event");
    for agent in &cluster.agents {
        let other = Api::new(&agent.http_addr());
        eventually(Duration::from_secs(10), "the event on every server", || async {
            let (_, events) = other.get("/v1/event/list?name=deploy").await;
            events.as_array().filter(|e| e.iter().any(|e| e["ID"] == fired["ID"])).map(|_| ())
        })
        .await;
    }
}
