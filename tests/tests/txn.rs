//! `/v1/txn` on a 3-server cluster: all or nothing, and one winner among concurrent CAS txns.

use std::time::Duration;

use base64::Engine;
use census_client::{Client, KvWriteOptions, QueryOptions};
use census_e2e::Cluster;
use serde_json::{Value, json};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn txn(client: &Client, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    let (status, _, out) =
        client.raw(reqwest::Method::PUT, "/v1/txn", &[], Some(bytes), None).await.expect("request");
    (
        status.as_u16(),
        serde_json::from_slice(&out).unwrap_or(Value::String(String::from_utf8_lossy(&out).into())),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_are_all_or_nothing_and_concurrent_cas_has_one_winner() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = cluster.agents[cluster.other_than(leader)].client();

    // The last op fails: nothing of the first two is visible, anywhere.
    let body = json!([
        {"KV": {"Verb": "set", "Key": "app/a", "Value": b64("1")}},
        {"KV": {"Verb": "set", "Key": "app/b", "Value": b64("2")}},
        {"KV": {"Verb": "cas", "Key": "app/c", "Value": b64("3"), "Index": 999}}
    ]);
    let (status, out) = txn(&follower, &body).await;
    assert_eq!(status, 409, "{out}");
    assert_eq!(out["Errors"][0]["OpIndex"], 2, "{out}");
    assert!(out["Results"].is_null());
    for agent in &cluster.agents {
        let opts = QueryOptions { consistency: census_client::Consistency::Consistent, ..Default::default() };
        let (pairs, _) = agent.client().kv_list("app/", &opts).await.expect("list");
        assert!(pairs.is_empty(), "{} sees {pairs:?}", agent.name);
    }

    // A successful one answers each op in order; reads see the txn's own writes.
    let body = json!([
        {"KV": {"Verb": "set", "Key": "app/a", "Value": b64("1"), "Flags": 7}},
        {"KV": {"Verb": "get", "Key": "app/a"}},
        {"KV": {"Verb": "check-not-exists", "Key": "app/zzz"}}
    ]);
    let (status, out) = txn(&follower, &body).await;
    assert_eq!(status, 200, "{out}");
    assert!(out["Errors"].is_null());
    assert!(out["Results"][0]["KV"]["Value"].is_null(), "writes answer without the value: {out}");
    assert_eq!(out["Results"][1]["KV"]["Value"], b64("1"));
    assert_eq!(out["Results"][1]["KV"]["Flags"], 7);

    // Ten CAS txns on one key from all three servers at once: exactly one wins.
    assert!(follower.kv_put("counter", b"0", KvWriteOptions::default()).await.expect("put"));
    let (pair, _) = follower.kv_get("counter", &QueryOptions::default()).await.expect("get");
    let index = pair.expect("counter").modify_index;
    let attempts: Vec<_> = (0..10)
        .map(|i| {
            let client = cluster.agents[i % 3].client();
            tokio::spawn(async move {
                let body = json!([
                    {"KV": {"Verb": "cas", "Key": "counter", "Value": b64(&i.to_string()), "Index": index}},
                    {"KV": {"Verb": "set", "Key": format!("winner/{i}"), "Value": b64("won")}}
                ]);
                txn(&client, &body).await.0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.expect("task"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9, "{statuses:?}");
    let winners = follower.kv_keys("winner/", None).await.expect("keys");
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (pair, _) = follower.kv_get("counter", &QueryOptions::default()).await.expect("get");
    let value = pair.expect("counter").decoded_value().expect("b64");
    assert_eq!(format!("winner/{}", String::from_utf8_lossy(&value)), winners[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_transactions_are_refused_clearly() {
    let cluster = Cluster::start(1).await;
    let client = cluster.agents[0].client();
    let too_many: Vec<Value> =
        (0..129).map(|i| json!({"KV": {"Verb": "get", "Key": format!("k{i}")}})).collect();
    let (status, out) = txn(&client, &Value::Array(too_many)).await;
    assert_eq!(status, 413, "{out}");

    let (status, _, out) =
        client.raw(reqwest::Method::PUT, "/v1/txn", &[], Some(b"[{".to_vec()), None).await.expect("request");
    assert_eq!(status.as_u16(), 400, "{}", String::from_utf8_lossy(&out));

    let (status, out) = txn(
        &client,
        &json!([{"KV": {"Verb": "set", "Key": "ok"}}, {"KV": {"Verb": "frobnicate", "Key": "x"}}]),
    )
    .await;
    assert_eq!(status, 409, "{out}");
    assert_eq!(out["Errors"][0]["OpIndex"], 1);
    assert!(client.kv_get("ok", &QueryOptions::default()).await.expect("get").0.is_none());

    // 512 KiB applies to the whole body (base64 included).
    let big = "x".repeat(400 * 1024);
    let body = json!([{"KV": {"Verb": "set", "Key": "big", "Value": b64(&big)}}]);
    let (status, out) = txn(&client, &body).await;
    assert_eq!(status, 413, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn node_service_and_check_set_and_cas() {
    let cluster = Cluster::start(1).await;
    let client = cluster.agents[0].client();
    let set_all = json!([
        {"Node": {"Verb": "set", "Node": {"Node": "ext1", "Address": "10.9.0.1", "Meta": {"rack": "a"}}}},
        {"Service": {"Verb": "set", "Node": "ext1", "Service": {"ID": "db1", "Service": "db", "Port": 5432, "Tags": ["primary"]}}},
        {"Check": {"Verb": "set", "Check": {"Node": "ext1", "CheckID": "db1-alive", "Name": "alive", "Status": "passing", "ServiceID": "db1"}}}
    ]);
    let (status, out) = txn(&client, &set_all).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["Results"][0]["Node"]["Node"], "ext1", "{out}");
    assert_eq!(out["Results"][1]["Service"]["Port"], 5432, "{out}");
    assert_eq!(out["Results"][2]["Check"]["Status"], "passing", "{out}");
    let (entries, _) = client.health_service("db", true, &QueryOptions::default()).await.expect("health");
    assert_eq!(entries.len(), 1);
    let modify = out["Results"][1]["Service"]["ModifyIndex"].as_u64().expect("index");

    // cas with a stale index: refused, nothing changes; with the current one: written.
    let cas = |index: u64, port: u16| {
        json!([{"Service": {"Verb": "cas", "Node": "ext1",
            "Service": {"ID": "db1", "Service": "db", "Port": port, "ModifyIndex": index}}}])
    };
    let (status, out) = txn(&client, &cas(modify - 1, 6000)).await;
    assert_eq!(status, 409, "{out}");
    let (status, out) = txn(&client, &cas(modify, 6001)).await;
    assert_eq!(status, 200, "{out}");
    let (entries, _) = client.catalog_service("db", &QueryOptions::default()).await.expect("catalog");
    assert_eq!(entries[0].service_port, 6001);
    // cas with 0 only creates.
    let (status, _) =
        txn(&client, &json!([{"Node": {"Verb": "cas", "Node": {"Node": "ext1", "Address": "10.9.0.9"}}}]))
            .await;
    assert_eq!(status, 409);

    // All or nothing across kinds: a failing KV op undoes the service it followed.
    let mixed = json!([
        {"Service": {"Verb": "set", "Node": "ext1", "Service": {"ID": "cache1", "Service": "cache", "Port": 6379}}},
        {"KV": {"Verb": "check-index", "Key": "missing", "Index": 1}}
    ]);
    let (status, out) = txn(&client, &mixed).await;
    assert_eq!(status, 409, "{out}");
    let (entries, _) = client.catalog_service("cache", &QueryOptions::default()).await.expect("catalog");
    assert!(entries.is_empty(), "{entries:?}");

    // Invalid bodies are refused per op, with its index.
    let (status, out) =
        txn(&client, &json!([{"Service": {"Verb": "set", "Node": "ext1", "Service": {"Port": 1}}}])).await;
    assert_eq!(status, 409, "{out}");
    assert_eq!(out["Errors"][0]["OpIndex"], 0);
}
