//! What the chart's StatefulSet relies on, on loopback: every server is given every peer's name
//! (its own included), readiness, Prometheus metrics, a rescheduled server coming back at a new
//! address with its data dir, and the leader handing over before it stops (preStop).

use std::process::Command;
use std::time::{Duration, Instant};

use census_e2e::{Cluster, census_bin, eventually, free_port, put};

const WAIT: Duration = Duration::from_secs(20);

async fn get(addr: &str, path: &str) -> (u16, String) {
    match reqwest::get(format!("http://{addr}{path}")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Three servers each joined to all three addresses, the way the chart passes
/// census-server-{0,1,2}.census-server to every pod (names resolved anew on every attempt).
async fn chart_like_cluster() -> Cluster {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    Cluster::start_configured(3, &[], |i, agent| {
        agent.server_port = ports[i];
        agent.extra.retain(|a| !a.starts_with("-retry-join"));
        for port in &ports {
            agent.extra.push(format!("-retry-join=localhost:{port}"));
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_and_metrics_follow_the_leader() {
    let cluster = chart_like_cluster().await;
    let leader = cluster.wait_for_leader(WAIT).await;
    for agent in &cluster.agents {
        let addr = agent.http_addr();
        eventually(WAIT, "every server ready", || {
            let addr = addr.clone();
            async move { (get(&addr, "/v1/agent/ready").await.0 == 200).then_some(()) }
        })
        .await;
    }
    let (code, text) = get(&cluster.agents[leader].http_addr(), "/v1/agent/metrics?format=prometheus").await;
    assert_eq!(code, 200);
    assert!(text.contains("# TYPE census_raft_leader gauge\ncensus_raft_leader 1\n"), "{text}");
    assert!(text.contains("census_raft_peers 2\n"), "{text}");
    let follower = cluster.other_than(leader);
    let (_, text) = get(&cluster.agents[follower].http_addr(), "/v1/agent/metrics?format=prometheus").await;
    assert!(
        text.contains("census_raft_leader 0\n") && text.contains("census_raft_known_leader 1\n"),
        "{text}"
    );
    let (_, json) = get(&cluster.agents[follower].http_addr(), "/v1/agent/metrics").await;
    let json: serde_json::Value = serde_json::from_str(&json).expect("Consul-shaped JSON metrics");
    assert!(json["Gauges"].as_array().is_some_and(|g| g.iter().any(|m| m["Name"] == "census.raft.term")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_back_at_a_new_address_rejoins_with_its_data() {
    let mut cluster = chart_like_cluster().await;
    let leader = cluster.wait_for_leader(WAIT).await;
    let moved = cluster.other_than(leader);
    cluster.agents[moved].kill();
    // The pod is rescheduled: same data dir and name, another address.
    let old = cluster.agents[moved].raft_addr();
    cluster.agents[moved].server_port = free_port();
    let new = cluster.agents[moved].raft_addr();
    cluster.agents[moved].start();
    let leader_client = cluster.agents[leader].client();
    eventually(WAIT, "the new address in the Raft configuration", || {
        let c = leader_client.clone();
        let new = new.clone();
        async move { c.status_peers().await.ok().filter(|p| p.contains(&new)).map(|_| ()) }
    })
    .await;
    let peers = leader_client.status_peers().await.expect("peers");
    assert!(!peers.contains(&old), "old address still listed: {peers:?}");
    put(&leader_client, "/v1/kv/after-move", Some(serde_json::json!("v"))).await;
    let moved_http = cluster.agents[moved].http_addr();
    eventually(WAIT, "the moved server replicates new writes", || {
        let addr = moved_http.clone();
        async move { (get(&addr, "/v1/kv/after-move?stale&raw").await == (200, "\"v\"".into())).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_hands_over_before_it_stops() {
    let cluster = chart_like_cluster().await;
    let leader = cluster.wait_for_leader(WAIT).await;
    let follower = cluster.other_than(leader);
    let transfer = |i: usize| {
        Command::new(census_bin())
            .args(["operator", "raft", "transfer-leader", "-if-leader"])
            .arg(format!("-http-addr={}", cluster.agents[i].http_addr()))
            .output()
            .expect("run census")
    };
    let on_follower = transfer(follower);
    assert!(on_follower.status.success());
    assert!(String::from_utf8_lossy(&on_follower.stdout).contains("Not the leader"));

    let started = Instant::now();
    let out = transfer(leader);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Success"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let client = cluster.agents[follower].client();
    let old = cluster.agents[leader].raft_addr();
    let new_leader = eventually(WAIT, "a new leader", || {
        let c = client.clone();
        let old = old.clone();
        async move { c.status_leader().await.ok().filter(|l| !l.is_empty() && *l != old) }
    })
    .await;
    // Writes through a remaining server work again.
    let writer =
        cluster.agents.iter().position(|a| a.raft_addr() == new_leader).expect("leader is one of ours");
    put(&cluster.agents[writer].client(), "/v1/kv/after-handover", Some(serde_json::json!(1))).await;
    println!("handover: new leader {new_leader} and first write after {:?}", started.elapsed());
}
