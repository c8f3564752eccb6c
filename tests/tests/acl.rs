//! ACLs on a real server: a default-deny agent refuses an anonymous request on every route of
//! the router, tokens carry exactly their rules (a service token writes only its service, KV
//! rules by prefix hold for every verb), listings and DNS are filtered, and the `census acl`
//! CLI bootstraps and manages tokens.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use census_client::Client;
use census_e2e::{Agent, census_bin, dig, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const MANAGEMENT: &str = "1b4e8f52-5c4d-4a3b-9e0f-6a7b8c9d0e1f";

/// A server with ACLs on (`default_policy` as given) and the initial management token.
async fn acl_server(name: &str, default_policy: &str, dir: &tempfile::TempDir) -> Agent {
    acl_server_with(name, default_policy, json!({}), dir).await
}

/// [`acl_server`] with more settings in its `acl` block.
async fn acl_server_with(name: &str, default_policy: &str, more: Value, dir: &tempfile::TempDir) -> Agent {
    let config = dir.path().join(format!("{name}.json"));
    let mut acl = json!({"enabled": true, "default_policy": default_policy,
                         "tokens": {"initial_management": MANAGEMENT}});
    if let (Some(acl), Some(more)) = (acl.as_object_mut(), more.as_object()) {
        acl.extend(more.clone());
    }
    std::fs::write(&config, json!({ "acl": acl }).to_string()).expect("config");
    let mut agent = Agent::new(
        name,
        dir.path().join(name),
        vec!["-bootstrap-expect=1".into(), format!("-config-file={}", config.display())],
    );
    agent.start();
    wait_until_serving(&agent, name).await;
    agent
}

/// Waits until the initial management token works and the agent has registered its node.
async fn wait_until_serving(agent: &Agent, name: &str) {
    let client = as_token(agent, MANAGEMENT);
    eventually(Duration::from_secs(20), "the initial management token to work", || async {
        let (status, _, body) = client.raw(Method::GET, "/v1/acl/token/self", &[], None, None).await.ok()?;
        (status == StatusCode::OK && String::from_utf8_lossy(&body).contains("Initial Management Token"))
            .then_some(())
    })
    .await;
    eventually(Duration::from_secs(20), "the agent to register its node", || async {
        let (status, _, body) =
            client.raw(Method::GET, "/v1/catalog/node/".to_string().as_str(), &[], None, None).await.ok()?;
        let _ = (status, body);
        let (_, _, body) =
            client.raw(Method::GET, &format!("/v1/catalog/node/{name}"), &[], None, None).await.ok()?;
        serde_json::from_slice::<Value>(&body).ok().filter(|v| !v.is_null()).map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn with_token_persistence_a_token_set_through_the_api_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A configured default token that names no token: the one set through the API must win
    // over it after the restart.
    let configured = json!({"enable_token_persistence": true,
        "tokens": {"initial_management": MANAGEMENT, "default": "00000000-0000-4000-8000-000000000000"}});
    let mut agent = acl_server_with("persist1", "deny", configured, &dir).await;
    let admin = as_token(&agent, MANAGEMENT);
    let reader = token_with(&admin, "cfg-reader", r#"key_prefix "cfg/" { policy = "read" }"#).await;
    let (status, body) = call(&admin, Method::PUT, "/v1/kv/cfg/x", Some(json!("v"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let anonymous = agent.client();
    assert_eq!(call(&anonymous, Method::GET, "/v1/kv/cfg/x", None).await.0, StatusCode::FORBIDDEN);

    let (ok, out, err) = census_acl(&agent, Some(MANAGEMENT), &["set-agent-token", "default", &reader]);
    assert!(ok && out.contains("set successfully"), "{out}{err}");
    assert_eq!(
        call(&anonymous, Method::GET, "/v1/kv/cfg/x", None).await.0,
        StatusCode::OK,
        "the default token"
    );
    let file = agent.data_dir.join("acl-tokens.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("acl-tokens.json").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is readable by its owner only");

    agent.kill();
    agent.start();
    wait_until_serving(&agent, "persist1").await;
    let anonymous = agent.client();
    let (status, body) = call(&anonymous, Method::GET, "/v1/kv/cfg/x", None).await;
    assert_eq!(status, StatusCode::OK, "the default token set before the restart is gone: {body}");
}

fn as_token(agent: &Agent, token: &str) -> Client {
    agent.client().with_token(Some(token.to_string()))
}

async fn call(client: &Client, method: Method, path: &str, body: Option<Value>) -> (StatusCode, String) {
    let body = body.map(|b| b.to_string().into_bytes());
    let (status, _, bytes) = client.raw(method, path, &[], body, None).await.expect("request");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Creates a policy with `rules` and a token linking it; returns the token's SecretID.
async fn token_with(admin: &Client, name: &str, rules: &str) -> String {
    let (status, policy) =
        call(admin, Method::PUT, "/v1/acl/policy", Some(json!({"Name": name, "Rules": rules}))).await;
    assert_eq!(status, StatusCode::OK, "{policy}");
    let (status, token) =
        call(admin, Method::PUT, "/v1/acl/token", Some(json!({"Policies": [{"Name": name}]}))).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let token: Value = serde_json::from_str(&token).expect("token json");
    token["SecretID"].as_str().expect("secret").to_string()
}

/// Creates a token with a service identity for `service`; returns the token as the API shows it.
async fn service_identity_token(admin: &Client, service: &str) -> Value {
    let body = json!({"ServiceIdentities": [{"ServiceName": service}]});
    let (status, token) = call(admin, Method::PUT, "/v1/acl/token", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    serde_json::from_str(&token).expect("token json")
}

/// The SecretID of `token`.
fn secret_of(token: &Value) -> String {
    token["SecretID"].as_str().expect("secret").to_string()
}

/// A concrete path for a route pattern, naming records that exist (the `web` service, its check,
/// a session) so that only the ACL check stands between the request and its effect.
fn concrete(route: &str, node: &str, session: &str) -> String {
    let id = if route.contains("/check/") {
        "service:web"
    } else if route.contains("/service/") {
        "web"
    } else if route.contains("/session/") {
        session
    } else {
        "0f2a6c1e-8d4b-4c3a-9f1e-2b3c4d5e6f70"
    };
    let path = route
        .split('/')
        .map(|seg| match seg {
            "{id}" => id.to_string(),
            "{node}" => node.to_string(),
            "{*key}" => "app/config".to_string(),
            "{*name}" => "builtin/service".to_string(),
            "{state}" => "any".to_string(),
            "{verb}" => "pass".to_string(),
            "{kind}" => "service-defaults".to_string(),
            "{addr}" => "127.0.0.1:1".to_string(),
            s if s.starts_with('{') => "0f2a6c1e-8d4b-4c3a-9f1e-2b3c4d5e6f70".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/");
    if route.ends_with("/maintenance") || route.contains("/maintenance/") {
        format!("{path}?enable=true")
    } else {
        path
    }
}

/// A body the route would accept without ACLs.
fn valid_body(route: &str) -> Value {
    match route {
        "/v1/agent/service/register" => json!({"Name": "evil", "Port": 1}),
        "/v1/agent/check/register" => json!({"Name": "evil", "TTL": "10s"}),
        "/v1/agent/check/update/{id}" => json!({"Status": "critical"}),
        "/v1/catalog/register" => json!({"Node": "evil", "Address": "10.6.6.6"}),
        "/v1/catalog/deregister" => json!({"Node": "deny1", "ServiceID": "web"}),
        "/v1/txn" => json!([{"KV": {"Verb": "set", "Key": "evil", "Value": "eA=="}}]),
        "/v1/session/create" => json!({"TTL": "10s"}),
        "/v1/agent/token/{kind}" => json!({"Token": "evil"}),
        _ => json!({}),
    }
}

/// Routes Consul answers without a token (and census's readiness probe).
const OPEN: [&str; 6] = [
    "/v1/status/leader",
    "/v1/status/peers",
    "/v1/agent/version",
    "/v1/agent/ready",
    "/v1/catalog/datacenters",
    "/v1/coordinate/datacenters",
];

#[tokio::test]
async fn default_deny_refuses_an_anonymous_request_on_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = acl_server("deny1", "deny", &dir).await;
    let admin = as_token(&agent, MANAGEMENT);
    // Something to hide behind every listing.
    census_e2e::put(&admin, "/v1/kv/app/config", Some(json!("v"))).await;
    census_e2e::put(
        &admin,
        "/v1/agent/service/register",
        Some(json!({"Name": "web", "Port": 80, "Check": {"TTL": "60s"}})),
    )
    .await;
    let (_, session) = call(&admin, Method::PUT, "/v1/session/create", Some(json!({"TTL": "60s"}))).await;
    let session =
        serde_json::from_str::<Value>(&session).expect("session")["ID"].as_str().expect("id").to_string();
    let anonymous = agent.client();
    let routes = census_e2e::routes::all();
    assert!(routes.len() > 100, "found only {} routes", routes.len());
    let mut leaked = Vec::new();
    for (method, route) in &routes {
        if OPEN.contains(&route.as_str()) {
            continue;
        }
        let path = concrete(route, "deny1", &session);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let body = (method != Method::GET).then(|| valid_body(route).to_string().into_bytes());
        let (status, _, bytes) =
            anonymous.raw(method.clone(), &path, &[], body, None).await.expect("request");
        let text = String::from_utf8_lossy(&bytes);
        // Refused, or answered with nothing: filtered listings, unknown records.
        let nothing = matches!(text.trim(), "" | "[]" | "{}" | "null")
            || (status == StatusCode::NOT_FOUND && !text.contains('{'));
        let refused = status == StatusCode::FORBIDDEN
            || status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::CONFLICT && text.contains("Permission denied"));
        let declined = status.is_client_error() && !text.contains("\"") && path.starts_with("/v1/acl/");
        if !(refused || nothing || declined) {
            leaked.push(format!("{method} {path}: {status} {}", text.chars().take(120).collect::<String>()));
        }
    }
    assert!(
        leaked.is_empty(),
        "answered an anonymous request with data or an effect:\n{}",
        leaked.join("\n")
    );
    // The agent is still serving (no anonymous leave, reload or snapshot restore got through),
    // and what was hidden is still there for the management token.
    let (status, body) = call(&admin, Method::GET, "/v1/kv/app/config?raw", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "\"v\""));
    let (status, text) = call(&anonymous, Method::PUT, "/v1/kv/app/config", Some(json!("w"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        text.contains("Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:write' on \"app/config\""),
        "{text}"
    );
    let unknown = as_token(&agent, "no-such-token");
    assert_eq!(
        call(&unknown, Method::GET, "/v1/kv/app/config", None).await,
        (StatusCode::FORBIDDEN, "ACL not found".into())
    );
    let (_, _, _) =
        anonymous.raw(Method::GET, "/v1/status/leader", &[], None, None).await.expect("open route");
}

#[tokio::test]
async fn a_service_token_registers_only_its_own_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = acl_server("svc1", "deny", &dir).await;
    let admin = as_token(&agent, MANAGEMENT);
    let web = as_token(&agent, &secret_of(&service_identity_token(&admin, "web").await));
    let register = |name: &str| json!({"Name": name, "ID": format!("{name}-1"), "Port": 8080});
    let (status, body) = call(&web, Method::PUT, "/v1/agent/service/register", Some(register("web"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&web, Method::PUT, "/v1/agent/service/register", Some(register("db"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("lacks permission 'service:write' on \"db\""), "{body}");
    // Through the catalog too: its own service on an existing node, but not the node itself.
    let catalog = |service: &str, address: &str| {
        json!({"Node": "svc1", "Address": address, "SkipNodeUpdate": true,
               "Service": {"Service": service, "ID": format!("{service}-2"), "Port": 81}})
    };
    let (status, body) =
        call(&web, Method::PUT, "/v1/catalog/register", Some(catalog("web", "127.0.0.1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(&web, Method::PUT, "/v1/catalog/register", Some(catalog("db", "127.0.0.1"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let new_node =
        json!({"Node": "elsewhere", "Address": "10.9.9.9", "Service": {"Service": "web", "Port": 1}});
    let (status, body) = call(&web, Method::PUT, "/v1/catalog/register", Some(new_node)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a new node needs node:write: {body}");
    // Nothing it was refused was written.
    let (_, services) = call(&admin, Method::GET, "/v1/catalog/services", None).await;
    let services: Value = serde_json::from_str(&services).expect("json");
    assert!(services.get("web").is_some() && services.get("db").is_none(), "{services}");
    // It may deregister its own instance, not someone else's.
    census_e2e::put(&admin, "/v1/agent/service/register", Some(register("db"))).await;
    let (status, _) = call(&web, Method::PUT, "/v1/agent/service/deregister/db-1", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&web, Method::PUT, "/v1/agent/service/deregister/web-1", None).await;
    assert_eq!(status, StatusCode::OK);
    // Nor take over another service's ID, its checks, or become a proxy for it (Consul vets
    // these the same way).
    let db_check = json!({"Node": "svc1", "Address": "127.0.0.1", "SkipNodeUpdate": true,
        "Check": {"CheckID": "db-alive", "Name": "db alive", "ServiceID": "db-1", "Status": "critical"}});
    assert_eq!(call(&admin, Method::PUT, "/v1/catalog/register", Some(db_check)).await.0, StatusCode::OK);
    let takeovers = [
        json!({"Node": "svc1", "Address": "127.0.0.1", "SkipNodeUpdate": true,
               "Service": {"Service": "web", "ID": "db-1", "Port": 81}}),
        json!({"Node": "svc1", "Address": "127.0.0.1", "SkipNodeUpdate": true,
               "Service": {"Service": "web", "ID": "web-3", "Port": 81},
               "Check": {"CheckID": "db-alive", "Name": "db alive", "ServiceID": "web-3", "Status": "passing"}}),
        json!({"Node": "svc1", "Address": "127.0.0.1", "SkipNodeUpdate": true,
               "Service": {"Service": "web", "ID": "web-proxy", "Kind": "connect-proxy", "Port": 21000,
                           "Proxy": {"DestinationServiceName": "db"}}}),
    ];
    for body in takeovers {
        let (status, answer) = call(&web, Method::PUT, "/v1/catalog/register", Some(body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {answer}");
        assert!(answer.contains("on \"db\""), "{answer}");
    }
    // The agent's own endpoints vet the same way.
    let agent_takeovers = [
        ("/v1/agent/service/register", json!({"ID": "db-1", "Name": "web", "Port": 81})),
        (
            "/v1/agent/check/register",
            json!({"ID": "db-alive", "Name": "x", "ServiceID": "web-2", "TTL": "30s"}),
        ),
    ];
    for (path, body) in agent_takeovers {
        let (status, answer) = call(&web, Method::PUT, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} {body}: {answer}");
        assert!(answer.contains("on \"db\""), "{answer}");
    }
    let (_, checks) = call(&admin, Method::GET, "/v1/health/service/db", None).await;
    assert!(
        checks.contains("\"critical\"") && !checks.contains("web-3"),
        "db's check is untouched: {checks}"
    );
}

#[tokio::test]
async fn kv_rules_by_prefix_hold_for_every_verb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = acl_server("kv1", "deny", &dir).await;
    let admin = as_token(&agent, MANAGEMENT);
    for key in ["app/a", "app/secret/pw", "other/x"] {
        census_e2e::put(&admin, &format!("/v1/kv/{key}"), Some(json!(key))).await;
    }
    let rules = r#"
key_prefix "app/" { policy = "write" }
key_prefix "app/secret/" { policy = "deny" }
session_prefix "" { policy = "write" }
"#;
    let app = as_token(&agent, &token_with(&admin, "app-writer", rules).await);
    // get
    assert_eq!(call(&app, Method::GET, "/v1/kv/app/a?raw", None).await, (StatusCode::OK, "\"app/a\"".into()));
    assert_eq!(call(&app, Method::GET, "/v1/kv/app/secret/pw", None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&app, Method::GET, "/v1/kv/other/x", None).await.0, StatusCode::FORBIDDEN);
    // put
    assert_eq!(
        call(&app, Method::PUT, "/v1/kv/app/b", Some(json!(1))).await,
        (StatusCode::OK, "true".into())
    );
    assert_eq!(
        call(&app, Method::PUT, "/v1/kv/app/secret/pw", Some(json!(2))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call(&app, Method::PUT, "/v1/kv/other/y", Some(json!(3))).await.0, StatusCode::FORBIDDEN);
    // recurse and keys: filtered, with the header saying so
    let (status, headers, body) =
        app.raw(Method::GET, "/v1/kv/", &[("recurse", String::new())], None, None).await.expect("recurse");
    assert_eq!(status, StatusCode::OK);
    let keys: BTreeSet<String> = serde_json::from_slice::<Vec<Value>>(&body)
        .expect("pairs")
        .iter()
        .map(|p| p["Key"].as_str().expect("key").to_string())
        .collect();
    assert_eq!(keys, BTreeSet::from(["app/a".to_string(), "app/b".to_string()]));
    assert_eq!(headers.get("X-Consul-Results-Filtered-By-ACLs").map(|v| v.as_bytes()), Some(&b"true"[..]));
    let (_, keys) = call(&app, Method::GET, "/v1/kv/?keys", None).await;
    assert_eq!(serde_json::from_str::<Vec<String>>(&keys).expect("keys"), ["app/a", "app/b"]);
    // delete, and a tree delete only where nothing under it is denied
    assert_eq!(call(&app, Method::DELETE, "/v1/kv/other/x", None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&app, Method::DELETE, "/v1/kv/app/?recurse", None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&app, Method::DELETE, "/v1/kv/app/b", None).await, (StatusCode::OK, "true".into()));
    // txn: a denied operation fails the whole transaction, with Consul's 409 and nothing written
    let txn = json!([
        {"KV": {"Verb": "set", "Key": "app/t", "Value": "eA=="}},
        {"KV": {"Verb": "set", "Key": "other/t", "Value": "eA=="}},
    ]);
    let (status, body) = call(&app, Method::PUT, "/v1/txn", Some(txn)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("\"OpIndex\":1") && body.contains("Permission denied"), "{body}");
    assert_eq!(call(&admin, Method::GET, "/v1/kv/app/t", None).await.0, StatusCode::NOT_FOUND);
    // lock: acquire with a session of its own
    let (status, session) = call(&app, Method::PUT, "/v1/session/create", Some(json!({"TTL": "30s"}))).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let id = serde_json::from_str::<Value>(&session).expect("json")["ID"].as_str().expect("id").to_string();
    let lock = |key: &str| format!("/v1/kv/{key}?acquire={id}");
    assert_eq!(
        call(&app, Method::PUT, &lock("app/leader"), Some(json!("me"))).await,
        (StatusCode::OK, "true".into())
    );
    assert_eq!(
        call(&app, Method::PUT, &lock("other/leader"), Some(json!("me"))).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn listings_and_dns_answer_only_what_the_token_may_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = acl_server("list1", "deny", &dir).await;
    let admin = as_token(&agent, MANAGEMENT);
    for name in ["web", "db"] {
        let reg = json!({"Name": name, "Port": 80, "Check": {"TTL": "60s", "Status": "passing"}});
        census_e2e::put(&admin, "/v1/agent/service/register", Some(reg)).await;
    }
    let reader = token_with(
        &admin,
        "web-reader",
        r#"service "web" { policy = "read" } node_prefix "" { policy = "read" }"#,
    )
    .await;
    let web = as_token(&agent, &reader);
    let (status, headers, body) =
        web.raw(Method::GET, "/v1/catalog/services", &[], None, None).await.expect("services");
    assert_eq!(status, StatusCode::OK);
    let services: Value = serde_json::from_slice(&body).expect("json");
    assert!(
        services.get("web").is_some() && services.get("db").is_none() && services.get("consul").is_none(),
        "{services}"
    );
    let _ = headers;
    assert_eq!(call(&web, Method::GET, "/v1/health/service/db", None).await.0, StatusCode::FORBIDDEN);
    let (_, healthy) = call(&web, Method::GET, "/v1/health/service/web?passing", None).await;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&healthy).expect("entries").len(), 1);
    let (_, state) = call(&web, Method::GET, "/v1/health/state/any", None).await;
    let names: BTreeSet<String> = serde_json::from_str::<Vec<Value>>(&state)
        .expect("checks")
        .iter()
        .map(|c| c["ServiceName"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!names.contains("db"), "{names:?}");
    // DNS answers with the agent's default token: nothing until it has one.
    assert!(dig(agent.dns_port, &["web.service.consul", "A"]).contains("NXDOMAIN"));
    let (status, _) =
        call(&admin, Method::PUT, "/v1/agent/token/default", Some(json!({"Token": reader}))).await;
    assert_eq!(status, StatusCode::OK);
    let answer = dig(agent.dns_port, &["web.service.consul", "A"]);
    assert!(answer.contains("status: NOERROR") && answer.contains("127.0.0.1"), "{answer}");
    assert!(dig(agent.dns_port, &["db.service.consul", "A"]).contains("NXDOMAIN"));
    // And so do requests without a token now.
    let (_, services) = call(&agent.client(), Method::GET, "/v1/catalog/services", None).await;
    let services: Value = serde_json::from_str(&services).expect("json");
    assert!(services.get("web").is_some() && services.get("db").is_none(), "{services}");
}

fn census_acl(agent: &Agent, token: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(census_bin());
    cmd.arg("acl").args(args).arg(format!("-http-addr={}", agent.http_addr()));
    cmd.env_remove("CONSUL_HTTP_TOKEN").env_remove("CENSUS_HTTP_TOKEN");
    if let Some(token) = token {
        cmd.env("CONSUL_HTTP_TOKEN", token);
    }
    let out = cmd.output().expect("census acl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_bootstraps_once_and_manages_policies_and_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("acl.json");
    std::fs::write(&config, r#"{"acl": {"enabled": true, "default_policy": "deny"}}"#).expect("config");
    let mut agent = Agent::new(
        "cli1",
        dir.path().join("cli1"),
        vec!["-bootstrap-expect=1".into(), format!("-config-file={}", config.display())],
    );
    agent.start();
    let bootstrap = eventually(Duration::from_secs(20), "census acl bootstrap to succeed", || async {
        let (ok, out, _) = census_acl(&agent, None, &["bootstrap", "-format=json"]);
        ok.then_some(out)
    })
    .await;
    let token: Value = serde_json::from_str(&bootstrap).expect("bootstrap json");
    assert_eq!(token["Description"], "Bootstrap Token (Global Management)");
    let secret = token["SecretID"].as_str().expect("secret").to_string();
    let (ok, _, err) = census_acl(&agent, None, &["bootstrap"]);
    assert!(!ok && err.contains("ACL bootstrap no longer allowed"), "{err}");
    // Every management token lost: the operator writes the reported reset index into the data
    // dir, and bootstrap works once more (a wrong index does not).
    let reset: u64 = err
        .split("reset index: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no reset index in {err}"));
    let reset_file = agent.data_dir.join("acl-bootstrap-reset");
    std::fs::write(&reset_file, format!("{}\n", reset + 1)).expect("reset file");
    let (ok, _, err) = census_acl(&agent, None, &["bootstrap"]);
    assert!(!ok && err.contains(&format!("Invalid bootstrap reset index (specified {}", reset + 1)), "{err}");
    std::fs::write(&reset_file, format!("{reset}\n")).expect("reset file");
    let (ok, out, err) = census_acl(&agent, None, &["bootstrap", "-format=json"]);
    assert!(ok, "bootstrap with the reset index: {out}{err}");
    let again: Value = serde_json::from_str(&out).expect("bootstrap json");
    assert_ne!(again["SecretID"], token["SecretID"], "a new management token");
    assert!(!reset_file.exists(), "the reset file is used once");
    let (ok, _, err) = census_acl(&agent, None, &["bootstrap"]);
    assert!(!ok && err.contains("ACL bootstrap no longer allowed"), "{err}");
    let rules = dir.path().join("rules.hcl");
    std::fs::write(&rules, "key_prefix \"cfg/\" { policy = \"write\" }\n").expect("rules");
    let (ok, out, err) = census_acl(
        &agent,
        Some(&secret),
        &["policy", "create", "-name", "cfg-writer", "-rules", &format!("@{}", rules.display())],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) =
        census_acl(&agent, Some(&secret), &["token", "create", "-policy-name", "cfg-writer", "-format=json"]);
    assert!(ok, "{out}{err}");
    let writer = serde_json::from_str::<Value>(&out).expect("token json")["SecretID"]
        .as_str()
        .expect("secret")
        .to_string();
    let kv = |token: &str, key: &str| {
        Command::new(census_bin())
            .args([
                "kv",
                "put",
                &format!("-http-addr={}", agent.http_addr()),
                &format!("-token={token}"),
                key,
                "1",
            ])
            .output()
            .expect("census kv")
            .status
            .success()
    };
    assert!(kv(&writer, "cfg/a"));
    assert!(!kv(&writer, "other/a"));
    let (ok, out, _) = census_acl(&agent, Some(&secret), &["token", "list"]);
    assert!(
        ok && out.contains("Bootstrap Token (Global Management)") && out.contains("Anonymous Token"),
        "{out}"
    );
    let (ok, _, err) = census_acl(&agent, Some(&writer), &["token", "list"]);
    assert!(!ok && err.contains("lacks permission 'acl:read'"), "{err}");
}

#[tokio::test]
async fn a_client_agent_checks_tokens_through_the_servers_and_keeps_them_while_they_are_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = acl_server("acs1", "deny", &dir).await;
    let admin = as_token(&server, MANAGEMENT);
    let web_secret = secret_of(&service_identity_token(&admin, "web").await);
    // The agent token Consul's docs give a client agent: write its node, read services.
    let agent_token = token_with(
        &admin,
        "acc1-agent",
        r#"node "acc1" { policy = "write" } service_prefix "" { policy = "read" }"#,
    )
    .await;
    let config = dir.path().join("client.json");
    let acl = json!({"acl": {"enabled": true, "default_policy": "deny", "tokens": {"agent": agent_token}}});
    std::fs::write(&config, acl.to_string()).expect("config");
    let mut client = Agent::client_agent(
        "acc1",
        dir.path().join("acc1"),
        &server.raft_addr(),
        vec![format!("-config-file={}", config.display())],
    );
    client.start();
    eventually(Duration::from_secs(20), "the client agent to join", || async {
        let (_, body) = call(&admin, Method::GET, "/v1/catalog/node/acc1", None).await;
        serde_json::from_str::<Value>(&body).ok().filter(|v| !v.is_null())
    })
    .await;
    let register = |id: &str, name: &str| json!({"ID": id, "Name": name, "Port": 80});
    let anonymous = client.client();
    let web = as_token(&client, &web_secret);
    let (status, body) =
        call(&anonymous, Method::PUT, "/v1/agent/service/register", Some(register("web-1", "web"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) =
        call(&web, Method::PUT, "/v1/agent/service/register", Some(register("db-1", "db"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) =
        call(&web, Method::PUT, "/v1/agent/service/register", Some(register("web-1", "web"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(Duration::from_secs(20), "web-1 to reach the catalog", || async {
        let (_, body) = call(&admin, Method::GET, "/v1/catalog/service/web", None).await;
        serde_json::from_str::<Vec<Value>>(&body).ok().filter(|v| v.iter().any(|e| e["ServiceID"] == "web-1"))
    })
    .await;
    // Forwarded requests are checked by the server with the same token.
    let (status, _) = call(&web, Method::PUT, "/v1/kv/x", Some(json!(1))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let client_admin = as_token(&client, MANAGEMENT);
    assert_eq!(
        call(&client_admin, Method::PUT, "/v1/kv/x", Some(json!(1))).await,
        (StatusCode::OK, "true".into())
    );

    // With no server to ask, a token seen before keeps its grants; one never seen is refused.
    server.kill();
    let (status, body) =
        call(&web, Method::PUT, "/v1/agent/service/register", Some(register("web-2", "web"))).await;
    assert_eq!(status, StatusCode::OK, "the cached grants hold while the servers are away: {body}");
    let stranger = as_token(&client, "7d3f1a2b-0000-4000-8000-000000000000");
    let (status, body) = call(&stranger, Method::GET, "/v1/agent/services", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("no server answered"), "{body}");
}

/// A client agent writes its node with the agent token and each service with the token that
/// registered it, and the servers check each (Consul's model): an agent token that may write
/// only its node still syncs a service registered with that service's token, also after a
/// restart that finds the node gone (the tokens are kept in the data dir); a service whose token
/// was deleted is refused alone; an agent without a token is refused and says so.
#[tokio::test]
async fn a_client_agent_syncs_its_node_and_each_service_with_their_own_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = acl_server("ats1", "deny", &dir).await;
    let admin = as_token(&server, MANAGEMENT);
    let agent_token = token_with(
        &admin,
        "atc1-agent",
        r#"node "atc1" { policy = "write" } service_prefix "" { policy = "read" }"#,
    )
    .await;
    let web_token = token_with(&admin, "atc1-web", r#"service "web" { policy = "write" }"#).await;
    let client_config = |name: &str, tokens: Value| {
        let path = dir.path().join(format!("{name}.json"));
        let acl = json!({"acl": {"enabled": true, "default_policy": "deny", "tokens": tokens}});
        std::fs::write(&path, acl.to_string()).expect("config");
        format!("-config-file={}", path.display())
    };
    let catalog_has = |path: String, id: &'static str| {
        let admin = admin.clone();
        async move {
            let (_, body) = call(&admin, Method::GET, &path, None).await;
            let v: Value = serde_json::from_str(&body).ok()?;
            let found = match v {
                Value::Array(entries) => entries.iter().any(|e| e["ServiceID"] == id),
                Value::Object(node) => node.contains_key("Node") && id.is_empty(),
                _ => false,
            };
            found.then_some(())
        }
    };
    let mut client = Agent::client_agent(
        "atc1",
        dir.path().join("atc1"),
        &server.raft_addr(),
        vec![client_config("atc1", json!({"agent": agent_token}))],
    );
    client.start();
    eventually(Duration::from_secs(20), "the node, written with the agent token", || {
        catalog_has("/v1/catalog/node/atc1".into(), "")
    })
    .await;
    let web = as_token(&client, &web_token);
    let service = json!({"ID": "web-1", "Name": "web", "Port": 80});
    let (status, body) = call(&web, Method::PUT, "/v1/agent/service/register", Some(service)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(Duration::from_secs(20), "web-1, written with web's token", || {
        catalog_has("/v1/catalog/service/web".into(), "web-1")
    })
    .await;
    let kept =
        std::fs::read_to_string(dir.path().join("atc1/registration-tokens.json")).expect("kept tokens");
    assert!(kept.contains(&web_token), "the service's token is kept in the data dir");

    // The node and its service gone from the catalog while the agent is down: the restarted
    // agent writes the node back with its agent token and the service with the token it kept
    // (its agent token may not write `web`, and `web`'s may not create the node).
    client.kill();
    let dereg = json!({"Node": "atc1"});
    assert_eq!(call(&admin, Method::PUT, "/v1/catalog/deregister", Some(dereg)).await.0, StatusCode::OK);
    client.start();
    eventually(Duration::from_secs(20), "web-1 back after the restart", || {
        catalog_has("/v1/catalog/service/web".into(), "web-1")
    })
    .await;
    assert!(
        !client.log().contains("blocked by ACLs"),
        "web-1 came back with the node in one write, never refused for lack of node:write:\n{}",
        client.log()
    );

    // A service whose token was deleted is refused alone: the rest of the node still syncs.
    let db_token = service_identity_token(&admin, "db").await;
    let db = as_token(&client, &secret_of(&db_token));
    let service = json!({"ID": "db-1", "Name": "db", "Port": 5432});
    assert_eq!(call(&db, Method::PUT, "/v1/agent/service/register", Some(service)).await.0, StatusCode::OK);
    eventually(Duration::from_secs(20), "db-1 in the catalog", || {
        catalog_has("/v1/catalog/service/db".into(), "db-1")
    })
    .await;
    let accessor = db_token["AccessorID"].as_str().expect("accessor");
    let (status, body) = call(&admin, Method::DELETE, &format!("/v1/acl/token/{accessor}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let service = json!({"ID": "web-2", "Name": "web", "Port": 81});
    assert_eq!(call(&web, Method::PUT, "/v1/agent/service/register", Some(service)).await.0, StatusCode::OK);
    eventually(Duration::from_secs(20), "web-2 written beside the refused db-1", || {
        catalog_has("/v1/catalog/service/web".into(), "web-2")
    })
    .await;
    eventually(Duration::from_secs(20), "db-1's refusal in the agent's log", || async {
        let log = client.log();
        log.lines()
            .any(|line| line.contains("Service registration blocked by ACLs") && line.contains("db-1"))
            .then_some(())
    })
    .await;

    // No agent token: the servers refuse the node, and the agent says why.
    let mut tokenless = Agent::client_agent(
        "atc2",
        dir.path().join("atc2"),
        &server.raft_addr(),
        vec![client_config("atc2", json!({}))],
    );
    tokenless.start();
    eventually(Duration::from_secs(20), "the refusal in the agent's log", || async {
        let log = tokenless.log();
        (log.contains("Node info update blocked by ACLs") && log.contains("lacks permission 'node:write'"))
            .then_some(())
    })
    .await;
    let (_, body) = call(&admin, Method::GET, "/v1/catalog/node/atc2", None).await;
    assert_eq!(body.trim(), "null", "the refused node is not in the catalog");
}

/// The API server is a real kube-apiserver (`census_e2e::kube_real`): the pods' tokens are
/// service account tokens it issued (TokenRequest), and it answers the TokenReview census makes
/// as the method's reviewer account, bound to `system:auth-delegator` as Consul's docs say.
#[tokio::test(flavor = "multi_thread")]
async fn a_pod_logs_in_with_its_service_account_and_gets_the_identity_its_binding_rule_names() {
    use census_e2e::kube_real::{ADMIN_TOKEN, KubeApi, create, resources_url, send};
    let kube = KubeApi::start().await;
    let kube_admin = kube.client(ADMIN_TOKEN);
    for ns in ["shop", "jobs", "census"] {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        assert_eq!(create(&kube, &kube_admin, &namespace).await.0, 201);
    }
    let mut jwts = std::collections::BTreeMap::new();
    for (ns, name) in [("shop", "web"), ("jobs", "batch"), ("census", "reviewer")] {
        let account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}});
        let url = resources_url(&kube, "v1", "serviceaccounts", Some(ns));
        assert_eq!(send(kube_admin.post(&url).json(&account)).await.0, 201);
        let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}});
        let (status, answer) = send(kube_admin.post(format!("{url}/{name}/token")).json(&request)).await;
        assert_eq!(status, 201, "{answer:#}");
        jwts.insert(name, answer["status"]["token"].as_str().expect("token").to_string());
    }
    let delegate = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "census-reviewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
        "subjects": [{"kind": "ServiceAccount", "name": "reviewer", "namespace": "census"}]});
    assert_eq!(create(&kube, &kube_admin, &delegate).await.0, 201);
    let ca =
        std::fs::read_to_string(kube.dir.path().join("consul-agent-ca.pem")).expect("the API server's CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = acl_server("k8s1", "deny", &dir).await;
    let admin = as_token(&agent, MANAGEMENT);
    let method = json!({"Name": "kubernetes", "Type": "kubernetes", "MaxTokenTTL": "1h",
        "Config": {"Host": kube.url, "CACert": ca, "ServiceAccountJWT": jwts["reviewer"]}});
    let (status, body) = call(&admin, Method::PUT, "/v1/acl/auth-method", Some(method)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rule = json!({"AuthMethod": "kubernetes", "BindType": "service", "BindName": "${serviceaccount.name}",
                      "Selector": "serviceaccount.namespace==shop"});
    let (status, body) = call(&admin, Method::PUT, "/v1/acl/binding-rule", Some(rule)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let login = |jwt: &str| json!({"AuthMethod": "kubernetes", "BearerToken": jwt});
    let anonymous = agent.client();
    let (status, body) = call(&anonymous, Method::POST, "/v1/acl/login", Some(login(&jwts["web"]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token: Value = serde_json::from_str(&body).expect("token");
    assert_eq!(token["AuthMethod"], "kubernetes");
    assert_eq!(token["ServiceIdentities"][0]["ServiceName"], "web");
    assert!(token["ExpirationTime"].is_string(), "MaxTokenTTL bounds the token: {token}");
    let secret = token["SecretID"].as_str().expect("secret").to_string();
    let web = as_token(&agent, &secret);
    let reg = |name: &str| json!({"Name": name, "Port": 80});
    assert_eq!(
        call(&web, Method::PUT, "/v1/agent/service/register", Some(reg("web"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&web, Method::PUT, "/v1/agent/service/register", Some(reg("db"))).await.0,
        StatusCode::FORBIDDEN
    );

    // A service account no rule selects, and a JWT the API server does not know, get nothing.
    let (status, body) = call(&anonymous, Method::POST, "/v1/acl/login", Some(login(&jwts["batch"]))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(&anonymous, Method::POST, "/v1/acl/login", Some(login("forged"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("lookup failed"), "{body}");

    // Logout deletes the login's token.
    assert_eq!(call(&web, Method::POST, "/v1/acl/logout", None).await.0, StatusCode::OK);
    assert_eq!(
        call(&web, Method::GET, "/v1/agent/services", None).await,
        (StatusCode::FORBIDDEN, "ACL not found".into())
    );
}
