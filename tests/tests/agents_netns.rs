//! Servers and client agents as separate hosts: one network namespace per agent, each with its
//! own address and Consul's default ports, joined as the seeds write it (`-retry-join=10.77.0.1`,
//! no port). Three servers and twenty client agents: the Raft configuration holds exactly the
//! three servers; every agent's `members` converges to 23 alive; a SIGKILLed client is `failed`
//! in every view with its `serfHealth` critical and its services kept; a client cut off by a
//! silent partition is the same, and `alive` again with its checks passing after the heal (long
//! before its next periodic sync); `census leave` removes a client and its services at once; a
//! restarted client keeps its service, and anti-entropy undoes a catalog-side deregistration;
//! clients keep answering reads and DNS while a server is dead; the dead server is removed by
//! autopilot and a replacement promoted. Needs root, iproute2 and nftables.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use census_client::{Client, KvWriteOptions, QueryOptions};
use census_e2e::netns::Lan;
use census_e2e::{Agent, census_bin, eventually, put};
use serde_json::json;

const SERVERS: usize = 3;
const CLIENTS: usize = 20;
const START: Duration = Duration::from_secs(90);
/// Well under the clients' 60 s anti-entropy period: what happens within it is not that sync.
const CONVERGE: Duration = Duration::from_secs(30);

async fn statuses(agent: &Client) -> BTreeMap<String, u8> {
    match agent.agent_members().await {
        Ok(members) => members.into_iter().map(|m| (m.name.clone(), m.status)).collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// CheckID → Status of `node`'s checks, as the catalog says.
async fn node_checks(server: &Client, node: &str) -> BTreeMap<String, String> {
    let Ok((_, _, body)) =
        server.raw(reqwest::Method::GET, &format!("/v1/health/node/{node}"), &[], None, None).await
    else {
        return BTreeMap::new();
    };
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
    checks
        .iter()
        .map(|c| {
            (c["CheckID"].as_str().unwrap_or("").to_string(), c["Status"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Waits until every agent in `views` reports `node` with `status` (1 alive, 4 failed).
async fn seen_as(views: &[&Agent], node: &str, status: u8, within: Duration) {
    for agent in views {
        let client = agent.client();
        eventually(within, &format!("{} to see {node} with status {status}", agent.name), || async {
            (statuses(&client).await.get(node) == Some(&status)).then_some(())
        })
        .await;
    }
}

fn others(agents: &[Agent], skip: usize) -> Vec<&Agent> {
    agents.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, a)| a).collect()
}

async fn register_passing(agent: &Agent, service: &str) {
    let client = agent.client();
    let check = json!({"TTL": "10m"});
    put(&client, "/v1/agent/service/register", Some(json!({"Name": service, "Port": 80, "Check": check})))
        .await;
    put(&client, &format!("/v1/agent/check/pass/service:{service}"), None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_servers_twenty_clients_in_namespaces() {
    // One namespace more than agents: the replacement server's.
    let lan = Lan::create(SERVERS + CLIENTS + 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let joins: Vec<String> = (0..SERVERS).map(|i| format!("-retry-join={}", lan.ip(i))).collect();
    let mut agents: Vec<Agent> = Vec::new();
    for i in 0..SERVERS {
        let name = format!("server{i}");
        let mut flags = vec![format!("-bootstrap-expect={SERVERS}")];
        flags.extend(joins.iter().filter(|j| !j.ends_with(&lan.ip(i))).cloned());
        agents.push(Agent::new(&name, dir.path().join(&name), flags).in_netns(&lan.ns(i), &lan.ip(i)));
    }
    for c in 0..CLIENTS {
        let (i, name) = (SERVERS + c, format!("client{c}"));
        let mut agent =
            Agent::new(&name, dir.path().join(&name), joins.clone()).in_netns(&lan.ns(i), &lan.ip(i));
        agent.server = false;
        agents.push(agent);
    }
    for agent in &mut agents {
        agent.start();
    }
    let names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
    let started = Instant::now();
    for agent in &agents {
        let client = agent.client();
        eventually(START, &format!("{} to see all 23 alive", agent.name), || async {
            let seen = statuses(&client).await;
            names.iter().all(|n| seen.get(n) == Some(&1)).then_some(())
        })
        .await;
    }
    println!("23 agents in namespaces: every view complete {:?} after the start", started.elapsed());
    let server = agents[0].client();
    let config = server.raft_configuration(false).await.expect("raft configuration");
    let mut voters: Vec<String> = config.servers.iter().filter(|s| s.voter).map(|s| s.node.clone()).collect();
    voters.sort();
    assert_eq!(voters, ["server0", "server1", "server2"]);
    assert_eq!(config.servers.len(), SERVERS, "client agents hold no Raft seat");

    // Services on three clients, passing in the catalog.
    let (killed, partitioned, leaving) = (SERVERS + 1, SERVERS + 2, SERVERS + 3);
    for (i, service) in [(SERVERS, "web"), (killed, "api"), (partitioned, "db"), (leaving, "cache")] {
        register_passing(&agents[i], service).await;
    }
    eventually(CONVERGE, "the four services passing in the catalog", || async {
        let mut all = true;
        for service in ["web", "api", "db", "cache"] {
            all &= server.health_service(service, true, &QueryOptions::default()).await.ok()?.0.len() == 1;
        }
        all.then_some(())
    })
    .await;

    // SIGKILL: failed in every view, serfHealth critical, the service kept.
    agents[killed].kill();
    let t0 = Instant::now();
    eventually(CONVERGE, "client1's serfHealth critical", || async {
        (node_checks(&server, "client1").await.get("serfHealth").map(String::as_str) == Some("critical"))
            .then_some(())
    })
    .await;
    println!("client1 SIGKILLed: serfHealth critical after {:?}", t0.elapsed());
    seen_as(&others(&agents, killed), "client1", 4, CONVERGE).await;
    println!("client1 SIGKILLed: failed in all 22 views after {:?}", t0.elapsed());
    let api = server.catalog_service("api", &QueryOptions::default()).await.expect("api").0;
    assert_eq!(api.len(), 1, "a failed agent's services are kept");

    // A silent partition: the same; healed: alive, and its checks passing again.
    lan.isolate(partitioned);
    let t0 = Instant::now();
    let views: Vec<&Agent> =
        others(&agents, partitioned).into_iter().filter(|a| a.name != "client1").collect();
    seen_as(&views, "client2", 4, CONVERGE).await;
    println!("client2 partitioned: failed in all 21 views after {:?}", t0.elapsed());
    eventually(CONVERGE, "client2's checks critical", || async {
        let checks = node_checks(&server, "client2").await;
        (checks.get("serfHealth").map(String::as_str) == Some("critical")
            && checks.get("service:db").map(String::as_str) == Some("critical"))
        .then_some(())
    })
    .await;
    lan.heal(partitioned);
    let t0 = Instant::now();
    seen_as(&views, "client2", 1, CONVERGE).await;
    eventually(CONVERGE, "client2's checks passing after the heal", || async {
        let checks = node_checks(&server, "client2").await;
        (checks.get("serfHealth").map(String::as_str) == Some("passing")
            && checks.get("service:db").map(String::as_str) == Some("passing"))
        .then_some(())
    })
    .await;
    println!("client2 healed: alive everywhere and its checks passing after {:?}", t0.elapsed());

    // `census leave`: the node and its services leave the catalog before the command returns.
    let out = std::process::Command::new(census_bin())
        .args(["leave", "-http-addr", &agents[leaving].http_addr()])
        .output()
        .expect("census leave");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(server.catalog_service("cache", &QueryOptions::default()).await.expect("cache").0.is_empty());
    let nodes = server.catalog_nodes(&QueryOptions::default()).await.expect("nodes").0;
    assert!(nodes.iter().all(|n| n.node != "client3"), "{nodes:?}");
    assert!(agents[leaving].wait_exit(Duration::from_secs(20)), "client3 exits after leaving");

    // client0 restarts from its data dir (now syncing every 2 s): its service is still its own, and
    // a deregistration made behind its back in the catalog is undone by its anti-entropy.
    let c0 = SERVERS;
    agents[c0].kill();
    agents[c0].extra.push("-anti-entropy-interval=2s".into());
    agents[c0].start();
    let local = agents[c0].client();
    eventually(CONVERGE, "client0 back with web", || async {
        local.agent_services().await.ok().filter(|s| s.contains_key("web")).map(drop)
    })
    .await;
    put(&server, "/v1/catalog/deregister", Some(json!({"Node": "client0", "ServiceID": "web"}))).await;
    assert!(server.catalog_service("web", &QueryOptions::default()).await.expect("web").0.is_empty());
    eventually(CONVERGE, "anti-entropy to put web back", || async {
        let web = server.catalog_service("web", &QueryOptions::default()).await.ok()?.0;
        (web.len() == 1).then_some(())
    })
    .await;

    // A dead server: clients keep answering reads and DNS; autopilot removes it and promotes a
    // replacement.
    let via = agents[SERVERS + 4].client();
    assert!(via.kv_put("greeting", b"hi", KvWriteOptions::default()).await.expect("write"));
    put(
        &server,
        "/v1/operator/autopilot/configuration",
        Some(json!({"CleanupDeadServers": true, "ServerStabilizationTime": "3s", "MaxTrailingLogs": 250})),
    )
    .await;
    agents[2].kill();
    for c in [SERVERS + 4, SERVERS + 5, SERVERS + 6] {
        let client = agents[c].client();
        let value = client.kv_get("greeting", &QueryOptions::default()).await.expect("read through a client");
        assert!(value.0.is_some(), "{} answers with a server dead", agents[c].name);
    }
    let dig = std::process::Command::new("dig")
        .args([
            &format!("@{}", agents[SERVERS + 4].ip()),
            "-p8600",
            "+short",
            "+time=2",
            "+tries=1",
            "web.service.consul",
        ])
        .output()
        .expect("dig");
    assert_eq!(String::from_utf8_lossy(&dig.stdout).trim(), lan.ip(SERVERS), "web through client4's DNS");
    eventually(Duration::from_secs(60), "autopilot to remove server2", || async {
        let c = server.raft_configuration(false).await.ok()?;
        (c.servers.len() == 2).then_some(())
    })
    .await;
    let r = SERVERS + CLIENTS;
    let mut replacement = Agent::new("server3", dir.path().join("server3"), joins[..2].to_vec())
        .in_netns(&lan.ns(r), &lan.ip(r));
    replacement.start();
    eventually(Duration::from_secs(60), "server3 promoted to voter", || async {
        let c = server.raft_configuration(false).await.ok()?;
        let voters: Vec<String> = c.servers.iter().filter(|s| s.voter).map(|s| s.node.clone()).collect();
        (voters.len() == 3 && voters.contains(&"server3".to_string())).then_some(())
    })
    .await;
    assert!(via.kv_put("after", b"1", KvWriteOptions::default()).await.expect("write after the replacement"));
    for agent in &mut agents {
        agent.kill();
    }
    replacement.kill();
}
