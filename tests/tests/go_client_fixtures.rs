//! Every request body HashiCorp's Go client (`github.com/hashicorp/consul/api` v1.34.4) sends, as
//! captured in `tests/fixtures/consul-go-client-requests.jsonl`, replayed against census: each
//! must get Consul's answer, and what it registered must read back field for field.
//!
//! Three bodies depend on the run they were captured in, and are adapted here (said again at
//! each place): the check updates of `demo-hsvc-2` need that service, whose registration was not
//! captured (it is `demo-hsvc-1`'s with its own IDs); the txn `cas` names the ModifyIndex of
//! the earlier write in that run (here: in this one); and the last txn is meant to roll back.

use std::path::Path;

use census_e2e::single_server;
use serde_json::{Value, json};

fn fixtures() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/consul-go-client-requests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect()
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, method: &str, path: &str, body: &Value) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let request = self.http.request(method, format!("{}{path}", self.base));
        // A string body is a raw payload (an event's); anything else is JSON, nulls and all.
        let request = match body {
            Value::String(raw) => request.body(raw.clone()),
            other => request.body(serde_json::to_vec(other).expect("json")),
        };
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send("GET", path, &Value::Null).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("json answer")
    }
}

/// `actual` has every field of `expected` with the same value (objects compared recursively).
fn assert_fields(what: &str, actual: &Value, expected: &Value) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, v) in e {
                let got = a.get(k).unwrap_or_else(|| panic!("{what}: no field {k} in {actual}"));
                assert_fields(&format!("{what}.{k}"), got, v);
            }
        }
        _ => assert_eq!(actual, expected, "{what}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_go_clients_request_bodies_succeed_and_read_back() {
    let (agent, _dir) = single_server("go-client", &[]).await;
    let api = Api { http: census_e2e::http_client(), base: format!("http://{}", agent.http_addr()) };
    let mut sessions = 0;
    let mut query_id = None;
    for fixture in fixtures() {
        let (method, path) =
            (fixture["method"].as_str().expect("method"), fixture["path"].as_str().expect("path"));
        let mut body = fixture["body"].clone();
        if path == "/v1/agent/check/update/demo-hsvc-2-ttl" {
            // Not captured: demo-hsvc-2 registered as demo-hsvc-1 was.
            let reg = json!({"ID": "demo-hsvc-2", "Name": "demo-hsvc", "Tags": ["t2"], "Port": 9002,
                "Check": {"CheckID": "demo-hsvc-2-ttl", "TTL": "60s", "Status": "passing"}, "Checks": null});
            let (status, text) = api.send("PUT", "/v1/agent/service/register", &reg).await;
            assert_eq!(status, 200, "{text}");
        }
        if path == "/v1/txn" && body[0]["KV"]["Verb"] == "cas" {
            // The captured Index is the ModifyIndex demo/txn/b had in the capture's run.
            let current = api.get("/v1/kv/demo/txn/b").await;
            body[0]["KV"]["Index"] = current[0]["ModifyIndex"].clone();
        }
        let (status, text) = api.send(method, path, &body).await;
        let rollback = path == "/v1/txn" && body[0]["KV"]["Key"] == "demo/txn/rollback";
        if rollback {
            assert_eq!(status, 409, "a failed check-index rolls the txn back: {text}");
            let errors: Value = serde_json::from_str(&text).expect("txn errors");
            assert_eq!(errors["Errors"][0]["OpIndex"], 1, "{text}");
            let (status, _) = api.send("GET", "/v1/kv/demo/txn/rollback", &Value::Null).await;
            assert_eq!(status, 404, "nothing of a rolled-back txn is written");
            continue;
        }
        assert!((200..300).contains(&status), "{method} {path} with {body}: {status} {text}");
        if path == "/v1/session/create" {
            let id = serde_json::from_str::<Value>(&text).expect("session")["ID"]
                .as_str()
                .expect("ID")
                .to_string();
            sessions += 1;
            let info = api.get(&format!("/v1/session/info/{id}")).await;
            let mut expected = json!({"Behavior": body.get("Behavior").cloned().unwrap_or("release".into())});
            if let Some(name) = body.get("Name") {
                expected["Name"] = name.clone();
            }
            if let Some(ttl) = body.get("TTL") {
                expected["TTL"] = ttl.clone();
            }
            if body.get("LockDelay").is_some_and(|d| d == "5000ms") {
                expected["LockDelay"] = json!(5_000_000_000u64);
            }
            if body.get("NodeChecks").is_some() {
                expected["NodeChecks"] = json!([]);
            }
            assert_fields("session", &info[0], &expected);
        }
        if path == "/v1/query" {
            query_id =
                serde_json::from_str::<Value>(&text).expect("query")["ID"].as_str().map(str::to_string);
        }
        if path == "/v1/txn" && body[0]["KV"]["Verb"] == "set" {
            let results: Value = serde_json::from_str(&text).expect("txn results");
            assert_eq!(results["Errors"], Value::Null, "{text}");
            // set, set, get: check-not-exists returns no result, as in Consul.
            let last = results["Results"].as_array().and_then(|r| r.last()).cloned().unwrap_or_default();
            assert_eq!(last["KV"]["Value"], "MQ==", "the txn's get sees its set: {text}");
        }
    }

    // What the agent registrations left, field for field.
    let web = api.get("/v1/agent/service/demo-web-1").await;
    assert_fields(
        "demo-web-1",
        &web,
        &json!({"ID": "demo-web-1", "Service": "demo-web", "Tags": ["v1", "primary"], "Port": 8080,
            "Address": "127.0.0.1", "Meta": {"version": "1.2.3"}, "Weights": {"Passing": 1, "Warning": 1},
            "TaggedAddresses": {"lan_ipv4": {"Address": "127.0.0.1", "Port": 8080}, "wan_ipv4": {"Address": "127.0.0.1", "Port": 8080}}}),
    );
    let checks = api.get("/v1/agent/checks").await;
    assert_fields(
        "agent checks",
        &checks,
        &json!({
            "service:demo-web-1": {"Name": "ttl", "ServiceID": "demo-web-1", "Type": "ttl", "Status": "passing", "Output": "all good"},
            "demo-standalone": {"Name": "standalone", "ServiceID": "demo-web-1", "Type": "ttl", "Status": "passing"},
            "demo-http-chk": {"ServiceID": "demo-http", "Type": "http", "Interval": "1s", "Timeout": "1s",
                "Definition": {"HTTP": "http://127.0.0.1:37547/health"}},
            "demo-tcp-up": {"ServiceID": "demo-tcp", "Type": "tcp", "Definition": {"TCP": "127.0.0.1:42109"}},
            "demo-tcp-down": {"ServiceID": "demo-tcp", "Type": "tcp", "Definition": {"TCP": "127.0.0.1:42261"}},
            "demo-hsvc-1-ttl": {"ServiceID": "demo-hsvc-1", "Status": "passing"},
            "demo-hsvc-2-ttl": {"ServiceID": "demo-hsvc-2", "Status": "critical", "Output": ""},
        }),
    );
    assert!(checks.get("serfHealth").is_none(), "the agent's endpoints list only what was registered on it");
    let hsvc = api.get("/v1/agent/service/demo-hsvc-1").await;
    assert_fields("demo-hsvc-1", &hsvc, &json!({"Service": "demo-hsvc", "Tags": ["t1", "n1"], "Port": 9001}));

    // The catalog registration, with the Go client's zero Weights stored as Consul stores them.
    let node = api.get("/v1/catalog/node/demo-ext").await;
    assert_fields(
        "demo-ext",
        &node,
        &json!({"Node": {"Node": "demo-ext", "Address": "127.0.0.9", "Meta": {"rack": "r9"}},
            "Services": {"demo-extsvc-1": {"ID": "demo-extsvc-1", "Service": "demo-extsvc", "Tags": ["a", "b"],
                "Port": 9000, "Address": "", "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false}}}),
    );
    let health = api.get("/v1/health/node/demo-ext").await;
    assert_fields(
        "ext-check",
        &health[0],
        &json!({"CheckID": "ext-check", "Name": "ext", "Status": "passing",
        "ServiceID": "demo-extsvc-1", "ServiceName": "demo-extsvc", "Definition": {}}),
    );

    // KV written by the txns: a set, a cas and a delete.
    assert_eq!(api.get("/v1/kv/demo/txn/b").await[0]["Value"], "Mw==");
    assert_eq!(api.get("/v1/kv/demo/txn/b").await[0]["Flags"], 0);
    let (status, _) = api.send("GET", "/v1/kv/demo/txn/a", &Value::Null).await;
    assert_eq!(status, 404, "the second txn deleted demo/txn/a");

    // The event and the prepared query.
    let events = api.get("/v1/event/list?name=demo-ev").await;
    assert_fields("event", &events[0], &json!({"Name": "demo-ev", "Payload": "aGk=", "Version": 1}));
    let id = query_id.expect("the query's ID");
    let query = api.get(&format!("/v1/query/{id}")).await;
    assert_fields(
        "query",
        &query[0],
        &json!({"ID": id, "Name": "demo-pq",
        "Service": {"Service": "demo-hsvc", "OnlyPassing": true, "Failover": {"NearestN": 0}}}),
    );
    let executed = api.get("/v1/query/demo-pq/execute").await;
    let ids: Vec<&Value> =
        executed["Nodes"].as_array().expect("nodes").iter().map(|e| &e["Service"]["ID"]).collect();
    assert_eq!(ids, [&json!("demo-hsvc-1")], "OnlyPassing: demo-hsvc-2's check was set critical");
    assert_eq!(sessions, 14);
}
