//! The HTTP API against one server: bad input, status codes, nothing written by a refused request.

use std::time::Duration;

use census_client::{Client, QueryOptions};
use census_e2e::{Agent, eventually};
use reqwest::Method;

async fn single_server() -> (Agent, tempfile::TempDir) {
    census_e2e::single_server("solo", &[]).await
}

async fn status(client: &Client, method: Method, path: &str, body: Option<Vec<u8>>) -> (u16, String) {
    let (status, _, bytes) = client.raw(method, path, &[], body, None).await.expect("request");
    (status.as_u16(), String::from_utf8_lossy(&bytes).to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_consul_status_codes_and_writes_nothing() {
    let (agent, _dir) = single_server().await;
    let client = agent.client();
    let (_, before) = client.catalog_services(&QueryOptions::default()).await.expect("services");
    let (_, kv_before) = client.kv_list("", &QueryOptions::default()).await.expect("kv");

    let (code, body) =
        status(&client, Method::PUT, "/v1/agent/service/register", Some(b"{not json".to_vec())).await;
    assert_eq!(code, 400, "malformed JSON: {body}");
    assert!(body.contains("Request decode failed"), "{body}");

    let (code, body) =
        status(&client, Method::PUT, "/v1/agent/service/register", Some(br#"{"Port":80}"#.to_vec())).await;
    assert_eq!((code, body.as_str()), (400, "Missing service name"));

    let (code, body) = status(
        &client,
        Method::PUT,
        "/v1/agent/service/register",
        Some(br#"{"Name":"x","Port":"80"}"#.to_vec()),
    )
    .await;
    assert_eq!(code, 400, "a value of the wrong type: {body}");
    assert!(body.contains("cannot unmarshal string into Go struct field") && body.contains("Port"), "{body}");

    let big = vec![b'x'; 512 * 1024 + 1];
    let (code, body) = status(&client, Method::PUT, "/v1/kv/big", Some(big.clone())).await;
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("too large"), "{body}");

    // The same without Content-Length: a chunked stream.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let resp = census_e2e::http_client()
        .put(format!("http://{}/v1/kv/big", agent.http_addr()))
        .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .send()
        .await
        .expect("chunked put");
    assert_eq!(resp.status().as_u16(), 413);

    let (code, _) = status(&client, Method::GET, "/v1/no/such/route", None).await;
    assert_eq!(code, 404);

    let (code, _) = status(&client, Method::GET, "/v1/kv/missing", None).await;
    assert_eq!(code, 404, "a missing key is a 404");

    let (_, after) = client.catalog_services(&QueryOptions::default()).await.expect("services");
    let (_, kv_after) = client.kv_list("", &QueryOptions::default()).await.expect("kv");
    assert_eq!(before.last_index, after.last_index, "a refused registration wrote something");
    assert_eq!(kv_before.last_index, kv_after.last_index, "a refused KV write wrote something");
    assert!(client.kv_get("big", &QueryOptions::default()).await.expect("get").0.is_none());
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_core_stream::iter(chunks)
}

mod futures_core_stream {
    pub use futures::stream::{Stream, iter};
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_cas_flags_recurse_keys_and_raw() {
    let (agent, _dir) = single_server().await;
    let client = agent.client();
    use census_client::KvWriteOptions as W;
    assert!(client.kv_put("app/a", b"1", W { cas: Some(0), flags: Some(42) }).await.expect("create"));
    assert!(!client.kv_put("app/a", b"2", W { cas: Some(0), flags: None }).await.expect("cas=0 on existing"));
    let (pair, meta) = client.kv_get("app/a", &QueryOptions::default()).await.expect("get");
    let pair = pair.expect("exists");
    assert_eq!((pair.flags, pair.decoded_value().expect("b64")), (42, b"1".to_vec()));
    assert!(meta.last_index >= 1);
    assert!(
        !client
            .kv_put("app/a", b"3", W { cas: Some(pair.modify_index + 100), flags: None })
            .await
            .expect("stale")
    );
    assert!(
        client.kv_put("app/a", b"3", W { cas: Some(pair.modify_index), flags: None }).await.expect("match")
    );
    client.kv_put("app/sub/b", b"x", W::default()).await.expect("put");
    assert_eq!(client.kv_keys("app/", Some("/")).await.expect("keys"), vec!["app/a", "app/sub/"]);
    let (pairs, _) = client.kv_list("app/", &QueryOptions::default()).await.expect("recurse");
    assert_eq!(pairs.len(), 2);
    let (code, raw) = status(&client, Method::GET, "/v1/kv/app/a?raw", None).await;
    assert_eq!((code, raw.as_str()), (200, "3"));
    assert!(!client.kv_delete("app/a", false, Some(0)).await.expect("cas=0 delete does nothing"));
    assert!(client.kv_delete("app/", true, None).await.expect("recurse delete"));
    assert!(client.kv_list("app/", &QueryOptions::default()).await.expect("list").0.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_run_and_passing_excludes_failing_instances() {
    let (agent, _dir) = single_server().await;
    let client = agent.client();
    // A TTL check starts critical; pass/warn flip it; ?passing only keeps passing instances.
    let reg: census_client::types::AgentServiceRegistration = serde_json::from_value(serde_json::json!({
        "Name": "api", "ID": "api-1", "Port": 9000,
        "Check": {"TTL": "30s"}
    }))
    .expect("registration");
    client.agent_service_register(&reg).await.expect("register");
    let (all, _) = client.health_service("api", false, &QueryOptions::default()).await.expect("health");
    let check = all[0].checks.iter().find(|c| c.check_id == "service:api-1").expect("service check");
    assert_eq!(check.status, "critical", "checks start critical");
    assert!(
        client.health_service("api", true, &QueryOptions::default()).await.expect("passing").0.is_empty()
    );
    client.agent_check_ttl("pass", "service:api-1", "all good").await.expect("pass");
    let (passing, _) = client.health_service("api", true, &QueryOptions::default()).await.expect("passing");
    assert_eq!(passing.len(), 1);
    client.agent_check_ttl("warn", "service:api-1", "slow").await.expect("warn");
    assert!(
        client.health_service("api", true, &QueryOptions::default()).await.expect("warn").0.is_empty(),
        "?passing excludes warning"
    );

    // An HTTP check against the agent itself passes; the body is spelled as the seeds spell it.
    let body = serde_json::json!({
        "name": "self", "port": agent.http_port,
        "checks": [{"http": format!("http://{}/v1/status/leader", agent.http_addr()), "interval": "200ms"}]
    });
    let (code, text) =
        status(&client, Method::PUT, "/v1/agent/service/register", Some(body.to_string().into_bytes())).await;
    assert_eq!(code, 200, "{text}");
    eventually(Duration::from_secs(5), "the HTTP check to pass", || async {
        client.health_service("self", true, &QueryOptions::default()).await.ok().filter(|(e, _)| e.len() == 1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_overview_endpoints_speak_consuls_field_names_and_block_until_a_change() {
    let (agent, _dir) = single_server().await;
    let client = agent.client();
    let (code, body) = status(&client, Method::GET, "/v1/internal/ui/services", None).await;
    assert_eq!(code, 200, "{body}");
    let services: serde_json::Value = serde_json::from_str(&body).expect("json");
    let consul = &services[0];
    assert_eq!(consul["Name"], "consul");
    assert_eq!((consul["InstanceCount"].as_u64(), consul["ChecksPassing"].as_u64()), (Some(1), Some(1)));
    let (_, meta) = client
        .query::<serde_json::Value>("/v1/internal/ui/services", &[], &QueryOptions::default())
        .await
        .expect("services");

    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            let opts = QueryOptions::blocking(meta.last_index, Duration::from_secs(30));
            client
                .query::<Vec<serde_json::Value>>("/v1/internal/ui/services", &[], &opts)
                .await
                .expect("blocked read")
        })
    };
    let reg = br#"{"Name": "web", "ID": "web-1", "Port": 80, "Check": {"TTL": "30s"}}"#.to_vec();
    assert_eq!(status(&client, Method::PUT, "/v1/agent/service/register", Some(reg)).await.0, 200);
    let (after, meta_after) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the blocked read did not wake")
        .expect("join");
    assert!(meta_after.last_index > meta.last_index);
    let web = after.iter().find(|s| s["Name"] == "web").expect("web listed");
    assert_eq!((web["ChecksCritical"].as_u64(), web["Nodes"][0].as_str()), (Some(1), Some("solo")));

    let (code, body) = status(&client, Method::GET, "/v1/internal/ui/nodes", None).await;
    assert_eq!(code, 200, "{body}");
    let nodes: serde_json::Value = serde_json::from_str(&body).expect("json");
    let ids: Vec<&str> =
        nodes[0]["Services"].as_array().expect("services").iter().filter_map(|s| s["ID"].as_str()).collect();
    assert_eq!(ids, ["consul", "web-1"]);

    let (code, body) = status(&client, Method::GET, "/v1/operator/autopilot/health", None).await;
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (health["Healthy"].as_bool(), health["Servers"][0]["Leader"].as_bool()),
        (Some(true), Some(true))
    );
    let (_, body) = status(&client, Method::GET, "/v1/agent/self", None).await;
    let me: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(me["Stats"]["raft"]["state"], "Leader");

    // Without -ui (and without -dev) there is no UI.
    assert_eq!(status(&client, Method::GET, "/ui/", None).await.0, 404);
}
