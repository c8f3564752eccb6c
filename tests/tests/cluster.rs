//! A three-server cluster on loopback: election, leader loss, restarts, no lost writes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use census_client::{Consistency, KvWriteOptions, QueryOptions};
use census_e2e::{Cluster, eventually};

fn consistent() -> QueryOptions {
    QueryOptions { consistency: Consistency::Consistent, ..Default::default() }
}

fn stale() -> QueryOptions {
    QueryOptions { consistency: Consistency::Stale, ..Default::default() }
}

/// Writes through `agent` until one succeeds; returns how long it took.
async fn first_successful_write(cluster: &Cluster, agent: usize, key: &str) -> Duration {
    let started = Instant::now();
    let client = cluster.agents[agent].client();
    eventually(Duration::from_secs(10), "a successful write", || async {
        client.kv_put(key, b"after-failover", KvWriteOptions::default()).await.ok().filter(|ok| *ok)
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_servers_elect_a_leader_and_survive_losing_it() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    // A follower reports the peers once the leader's membership entry reached it, which can come
    // just after the election.
    let client = cluster.agents[0].client();
    eventually(Duration::from_secs(10), "agent 0 to report three peers", || async {
        client.status_peers().await.ok().filter(|peers| peers.len() == 3)
    })
    .await;

    let follower = cluster.other_than(leader);
    assert!(
        cluster.agents[follower]
            .client()
            .kv_put("before", b"1", KvWriteOptions::default())
            .await
            .expect("put")
    );

    cluster.agents[leader].kill();
    let survivor = cluster.other_than(leader);
    let gap = first_successful_write(&cluster, survivor, "after").await;
    assert!(gap < Duration::from_secs(3), "writes stalled {gap:?} after the leader was killed");
    let new_leader = cluster.wait_for_leader(Duration::from_secs(5)).await;
    assert_ne!(new_leader, leader);

    // The killed server restarts from its data dir and catches up.
    cluster.agents[leader].start();
    let client = cluster.agents[leader].client();
    eventually(Duration::from_secs(15), "the restarted server to serve the new key", || async {
        match client.kv_get("after", &stale()).await {
            Ok((Some(pair), _)) => Some(pair),
            _ => None,
        }
    })
    .await;
    let (before, _) = client.kv_get("before", &stale()).await.expect("stale read");
    assert_eq!(before.and_then(|p| p.decoded_value().ok()), Some(b"1".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_acknowledged_write_is_lost_across_kill_and_restart_cycles() {
    let mut cluster = Cluster::start(3).await;
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    for cycle in 0..5 {
        // Writes go to the leader; one refused during an election is retried until acknowledged.
        let writer = cluster.wait_for_leader(Duration::from_secs(15)).await;
        for i in 0..20 {
            let (key, value) = (format!("cycle{cycle}/key{i}"), format!("v{cycle}-{i}"));
            let agents = &cluster.agents;
            eventually(Duration::from_secs(15), "an acknowledged write", || async {
                for agent in agents.iter().filter(|a| a.is_running()) {
                    if agent
                        .client()
                        .kv_put(&key, value.as_bytes(), KvWriteOptions::default())
                        .await
                        .unwrap_or(false)
                    {
                        return Some(());
                    }
                }
                None
            })
            .await;
            acked.insert(key, value);
        }
        // Cycle 3 kills every server at once; the others kill the leader.
        let victims: Vec<usize> = if cycle == 3 { vec![0, 1, 2] } else { vec![writer] };
        for v in &victims {
            cluster.agents[*v].kill();
        }
        for v in &victims {
            cluster.agents[*v].start();
        }
    }
    cluster.wait_for_leader(Duration::from_secs(15)).await;
    assert_eq!(acked.len(), 100);
    let agents = &cluster.agents;
    for (key, value) in &acked {
        // Any server that answers (a restarted one may still be starting) gives a consistent read.
        let got = eventually(Duration::from_secs(15), "a consistent read", || async {
            for agent in agents.iter() {
                if let Ok((pair, _)) = agent.client().kv_get(key, &consistent()).await {
                    return Some(pair.and_then(|p| p.decoded_value().ok()));
                }
            }
            None
        })
        .await;
        assert_eq!(got.as_deref(), Some(value.as_bytes()), "acknowledged key {key} lost or changed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn blocking_query_on_one_server_wakes_on_a_registration_on_another() {
    let cluster = Cluster::start(3).await;
    let (a, b) = (cluster.agents[0].client(), cluster.agents[1].client());
    // Let every server register its own node first, so only the registration below changes things.
    eventually(Duration::from_secs(15), "three registered nodes", || async {
        b.catalog_nodes(&QueryOptions::default()).await.ok().filter(|(n, _)| n.len() == 3)
    })
    .await;
    eventually(Duration::from_secs(15), "three consul instances", || async {
        b.catalog_service("consul", &QueryOptions::default()).await.ok().filter(|(n, _)| n.len() == 3)
    })
    .await;
    let (_, meta) = b.health_service("web", false, &QueryOptions::default()).await.expect("first read");

    // No change: the query returns after `wait` with the same index.
    let started = Instant::now();
    let (_, same) = b
        .health_service("web", false, &QueryOptions::blocking(meta.last_index, Duration::from_secs(1)))
        .await
        .expect("idle");
    assert!(started.elapsed() >= Duration::from_secs(1), "returned early without a change");
    assert_eq!(same.last_index, meta.last_index);

    let blocked = tokio::spawn(async move {
        let opts = QueryOptions::blocking(meta.last_index, Duration::from_secs(30));
        let answer = b.health_service("web", false, &opts).await;
        (answer, Instant::now())
    });
    // Let the request reach the server and block before registering.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reg =
        census_client::types::AgentServiceRegistration { name: "web".into(), port: 80, ..Default::default() };
    a.agent_service_register(&reg).await.expect("register on node0");
    let registered_at = Instant::now();
    let (answer, returned_at) = blocked.await.expect("join");
    let (entries, new_meta) = answer.expect("blocking read");
    assert!(new_meta.last_index > meta.last_index, "index must move forward");
    assert_eq!(entries.len(), 1);
    let latency = returned_at.saturating_duration_since(registered_at);
    assert!(latency < Duration::from_millis(100), "blocked reader woke {latency:?} after the registration");
}
