//! Agent failure on a 3-server cluster: the instances of a SIGKILLed agent turn critical once
//! gossip finds it failed (its `serfHealth` goes critical) and are removed after their
//! DeregisterCriticalServiceAfter, by the leader; the agent's node recovers when it comes back;
//! `census leave` removes a node's services at once.

use std::time::{Duration, Instant};

use census_client::{Client, QueryOptions};
use census_e2e::{Cluster, census_bin, eventually, put};
use serde_json::json;

/// Gossip's failure detection (1 s probes, 3 s of suspicion), the bound the issue sets.
const LEASE: Duration = Duration::from_secs(5);
const DEREGISTER_AFTER: Duration = Duration::from_secs(4);

async fn passing(client: &Client, service: &str) -> usize {
    client.health_service(service, true, &QueryOptions::default()).await.map(|(e, _)| e.len()).unwrap_or(0)
}

async fn registered(client: &Client, service: &str) -> usize {
    client.catalog_service(service, &QueryOptions::default()).await.map(|(e, _)| e.len()).unwrap_or(0)
}

fn service_body(name: &str, agent_http: &str, deregister_after: Option<Duration>) -> serde_json::Value {
    let mut check = json!({"HTTP": format!("http://{agent_http}/v1/status/leader"), "Interval": "200ms"});
    if let Some(after) = deregister_after {
        check["DeregisterCriticalServiceAfter"] = json!(format!("{}s", after.as_secs()));
    }
    json!({"Name": name, "Port": 80, "Check": check})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_agents_instances_go_critical_within_the_lease_and_are_reaped() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let victim = cluster.other_than(leader);
    let watcher = cluster.agents[leader].client();
    let victim_http = cluster.agents[victim].http_addr();
    let victim_client = cluster.agents[victim].client();
    put(
        &victim_client,
        "/v1/agent/service/register",
        Some(service_body("web", &victim_http, Some(DEREGISTER_AFTER))),
    )
    .await;
    put(&victim_client, "/v1/agent/service/register", Some(service_body("keep", &victim_http, None))).await;
    for name in ["web", "keep"] {
        eventually(Duration::from_secs(10), "the instance to pass", || async {
            (passing(&watcher, name).await == 1).then_some(())
        })
        .await;
    }

    cluster.agents[victim].kill();
    let killed = Instant::now();
    eventually(LEASE + Duration::from_secs(5), "the dead agent's instance to leave ?passing", || async {
        (passing(&watcher, "web").await == 0).then_some(())
    })
    .await;
    let critical_after = killed.elapsed();
    println!("failure detection: instance critical {critical_after:?} after SIGKILL");
    assert_eq!(passing(&watcher, "keep").await, 0);

    eventually(LEASE + DEREGISTER_AFTER + Duration::from_secs(5), "the instance to be reaped", || async {
        (registered(&watcher, "web").await == 0).then_some(())
    })
    .await;
    let reaped_after = killed.elapsed();
    println!("deregister after {DEREGISTER_AFTER:?}: instance gone {reaped_after:?} after SIGKILL");
    assert!(reaped_after >= DEREGISTER_AFTER, "reaped too early: {reaped_after:?}");
    assert_eq!(registered(&watcher, "keep").await, 1, "no DeregisterCriticalServiceAfter: kept, critical");

    // The agent comes back: its node and its remaining instance pass again.
    cluster.agents[victim].start();
    eventually(Duration::from_secs(20), "the restarted agent's instance to pass again", || async {
        (passing(&watcher, "keep").await == 1).then_some(())
    })
    .await;

    // A graceful leave removes the node's services at once.
    let leaver = cluster.other_than(leader);
    let leaver_http = cluster.agents[leaver].http_addr();
    let leaver_name = cluster.agents[leaver].name.clone();
    put(
        &cluster.agents[leaver].client(),
        "/v1/agent/service/register",
        Some(service_body("bye", &leaver_http, None)),
    )
    .await;
    eventually(Duration::from_secs(10), "bye to pass", || async {
        (passing(&watcher, "bye").await == 1).then_some(())
    })
    .await;
    let out = std::process::Command::new(census_bin())
        .args(["leave", "-http-addr", &leaver_http])
        .output()
        .expect("census leave");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cluster.agents[leaver].wait_exit(Duration::from_secs(10)), "the agent exits after leave");
    assert_eq!(registered(&watcher, "bye").await, 0, "leave removes the node's services before exiting");
    let nodes = watcher.catalog_nodes(&QueryOptions::default()).await.expect("nodes").0;
    assert!(nodes.iter().all(|n| n.node != leaver_name), "{nodes:?}");
}
