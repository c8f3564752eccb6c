//! The CLI as the seeds use it, against a server started with the seeds' own flags.

use std::process::{Command, Output};
use std::time::Duration;

use census_client::QueryOptions;
use census_e2e::{Agent, census_bin, eventually};

fn census(agent: &Agent, args: &[&str]) -> Output {
    Command::new(census_bin())
        .args(args)
        .env("CONSUL_HTTP_ADDR", agent.http_addr())
        .env_remove("CENSUS_HTTP_ADDR")
        .output()
        .expect("run census")
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_flags_definition_files_kv_members_and_leave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_dir = dir.path().join("consul.d");
    std::fs::create_dir_all(&config_dir).expect("config dir");
    // Seed 001: a service definition in the config dir is synced at start.
    std::fs::write(
        config_dir.join("web.json"),
        r#"{"service": {"name": "web", "tags": ["rails"], "port": 80}}"#,
    )
    .expect("definition");
    // Seed 000's server flags, with the single-dash spelling and a space-separated value.
    let extra = vec![
        "-ui-dir".to_string(),
        "/ui".to_string(),
        "-bootstrap-expect".to_string(),
        "1".to_string(),
        "-enable-script-checks=true".to_string(),
        format!("-config-dir={}", config_dir.display()),
    ];
    let mut agent = Agent::new("seed", dir.path().join("data"), extra);
    agent.start();
    let client = agent.client();
    eventually(Duration::from_secs(20), "the definition-file service", || async {
        client.catalog_service("web", &QueryOptions::default()).await.ok().filter(|(s, _)| !s.is_empty())
    })
    .await;

    let out = stdout_ok(&census(&agent, &["kv", "put", "redis/config/minconns", "1"]));
    assert!(out.contains("Success! Data written to: redis/config/minconns"), "{out}");
    assert_eq!(stdout_ok(&census(&agent, &["kv", "get", "redis/config/minconns"])).trim(), "1");
    let missing = census(&agent, &["kv", "get", "nope"]);
    assert_eq!(missing.status.code(), Some(1), "a missing key exits 1");
    let cas = census(&agent, &["kv", "put", "-cas", "-modify-index=1", "redis/config/minconns", "2"]);
    assert_eq!(cas.status.code(), Some(1), "a failed CAS exits 1");

    let definition = dir.path().join("redis.json");
    std::fs::write(&definition, r#"{"service": {"name": "redis", "tags": ["primary"], "port": 8000}}"#)
        .expect("write");
    let path = definition.display().to_string();
    assert!(
        stdout_ok(&census(&agent, &["services", "register", &path])).contains("Registered service: redis")
    );
    let services = stdout_ok(&census(&agent, &["catalog", "services"]));
    assert_eq!(services.lines().collect::<Vec<_>>(), vec!["consul", "redis", "web"], "{services}");
    let json = stdout_ok(&census(&agent, &["catalog", "services", "-format=json"]));
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("json output");
    assert_eq!(parsed["redis"], serde_json::json!(["primary"]));
    stdout_ok(&census(&agent, &["services", "deregister", &path]));
    assert!(client.catalog_service("redis", &QueryOptions::default()).await.expect("read").0.is_empty());

    let members = stdout_ok(&census(&agent, &["members"]));
    assert!(members.lines().next().unwrap_or_default().starts_with("Node"), "{members}");
    assert!(members.contains("seed") && members.contains("alive"), "{members}");
    let peers = stdout_ok(&census(&agent, &["operator", "raft", "list-peers"]));
    assert!(peers.contains("leader") && peers.contains(&agent.raft_addr()), "{peers}");

    // Graceful leave: the node's services leave the catalog and the agent exits.
    stdout_ok(&census(&agent, &["leave"]));
    let exited = agent.wait_exit(Duration::from_secs(10));
    assert!(exited, "agent still running after leave");
}
