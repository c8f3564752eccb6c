//! `?filter=` on the listing endpoints of a real agent.

use census_e2e::{put, single_server};
use serde_json::{Value, json};

async fn get(client: &census_client::Client, path: &str, filter: &str) -> (u16, String) {
    let params = [("filter", filter.to_string())];
    let (status, _, body) =
        client.raw(reqwest::Method::GET, path, &params, None, None).await.expect("request");
    (status.as_u16(), String::from_utf8_lossy(&body).to_string())
}

fn ids(body: &str, field: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(body).expect("json");
    let items: Vec<Value> = match value {
        Value::Array(items) => items,
        Value::Object(map) => map.into_values().collect(),
        _ => Vec::new(),
    };
    let mut ids: Vec<String> = items
        .iter()
        .filter_map(|i| {
            field.split('.').try_fold(i, |v, f| v.get(f)).and_then(Value::as_str).map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_are_narrowed_and_bad_expressions_refused() {
    let (agent, _dir) = single_server("filters", &[]).await;
    let client = agent.client();
    for (id, tags, env, status) in [
        ("web-1", vec!["v1"], "prod", "passing"),
        ("web-2", vec!["v2", "canary"], "prod", "critical"),
        ("web-3", vec!["v2"], "dev", "passing"),
    ] {
        let reg = json!({"ID": id, "Name": "web", "Tags": tags, "Port": 80, "Meta": {"env": env},
                         "Check": {"TTL": "30s", "Status": status}});
        put(&client, "/v1/agent/service/register", Some(reg)).await;
    }
    let cases = [
        ("/v1/catalog/service/web", r#"ServiceMeta.env == "prod""#, "ServiceID", vec!["web-1", "web-2"]),
        (
            "/v1/catalog/service/web",
            r#""v2" in ServiceTags and ServiceMeta["env"] != "prod""#,
            "ServiceID",
            vec!["web-3"],
        ),
        ("/v1/health/service/web", r#"Checks.Status == "critical""#, "Service.ID", vec!["web-2"]),
        (
            "/v1/health/service/web",
            r#"not (Service.Tags contains "canary") and Service.ID matches "^web-[0-9]$""#,
            "Service.ID",
            vec!["web-1", "web-3"],
        ),
        // The agent lists only what was registered on it: not the server's own `consul` service.
        ("/v1/agent/services", r#"Tags is empty or "v1" in Tags"#, "ID", vec!["web-1"]),
        ("/v1/agent/checks", r#"Status != "passing""#, "ServiceID", vec!["web-2"]),
        (
            "/v1/health/state/any",
            r#"ServiceName == "web" and Status == "passing""#,
            "ServiceID",
            vec!["web-1", "web-3"],
        ),
        ("/v1/catalog/nodes", r#"Node == "filters""#, "Node", vec!["filters"]),
    ];
    for (path, filter, field, want) in cases {
        let (status, body) = get(&client, path, filter).await;
        assert_eq!(status, 200, "{path} {filter}: {body}");
        assert_eq!(ids(&body, field), want, "{path} ?filter={filter}");
    }
    for bad in [
        r#"ServiceMeta.env = "prod""#,
        r#"ServiceMeta.env == "prod" and"#,
        r#"ServiceID matches "(""#,
        "Nope == 1",
    ] {
        let (status, body) = get(&client, "/v1/catalog/service/web", bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("Failed to create boolean expression evaluator"), "{body}");
    }
}
