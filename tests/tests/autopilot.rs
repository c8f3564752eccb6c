//! Autopilot with real processes on loopback: three servers; one is SIGKILLed and, once gossip
//! has marked it failed for ServerStabilizationTime, autopilot removes it from the Raft
//! configuration (CleanupDeadServers); a replacement server joins as a non-voter and is promoted
//! after ServerStabilizationTime; writes keep working throughout.

use std::collections::BTreeMap;
use std::time::Duration;

use census_client::{Client, KvWriteOptions};
use census_e2e::{Agent, Cluster, eventually, put};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(40);

/// Node → voter, as the Raft configuration says.
async fn configuration(client: &Client) -> BTreeMap<String, bool> {
    match client.raft_configuration(false).await {
        Ok(c) => c.servers.into_iter().map(|s| (s.node, s.voter)).collect(),
        Err(_) => BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_server_is_removed_and_a_replacement_promoted() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await.expect("a leader");
    let victim = (leader + 1) % 3;
    let survivor = cluster.agents[leader].client();
    // Short stabilization, so the test does not wait Consul's 10 s twice.
    put(
        &survivor,
        "/v1/operator/autopilot/configuration",
        Some(json!({"CleanupDeadServers": true, "ServerStabilizationTime": "3s", "MaxTrailingLogs": 250})),
    )
    .await;

    cluster.agents[victim].kill();
    let victim_name = cluster.agents[victim].name.clone();
    let config = eventually(WAIT, "autopilot to remove the killed server", || async {
        let c = configuration(&survivor).await;
        (c.len() == 2 && !c.contains_key(&victim_name)).then_some(c)
    })
    .await;
    assert!(config.values().all(|voter| *voter), "{config:?}");
    assert!(survivor.kv_put("after-removal", b"1", KvWriteOptions::default()).await.expect("write"));

    // A replacement joins through a survivor: a non-voter first, a voter once stable.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut replacement = Agent::new(
        "replacement",
        dir.path().join("replacement"),
        vec![format!("-retry-join={}", cluster.agents[leader].raft_addr())],
    );
    replacement.start();
    eventually(WAIT, "the replacement as a non-voter", || async {
        (configuration(&survivor).await.get("replacement") == Some(&false)).then_some(())
    })
    .await;
    let config = eventually(WAIT, "the replacement promoted", || async {
        let c = configuration(&survivor).await;
        (c.get("replacement") == Some(&true)).then_some(c)
    })
    .await;
    assert_eq!(config.len(), 3, "{config:?}");
    assert!(config.values().all(|voter| *voter), "{config:?}");
    let through_replacement = replacement.client();
    assert!(
        through_replacement.kv_put("after-promotion", b"1", KvWriteOptions::default()).await.expect("write")
    );
}
