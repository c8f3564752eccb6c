//! A partition heals without an election (PreVote), and a leader cut off from its quorum stops
//! calling itself leader (check-quorum): three servers in network namespaces, one cut off with
//! nftables. Before PreVote, a cut-off server raised its term with every election timeout and
//! deposed the healthy leader when it came back (writes stalled for 3-4 s after every heal).
//! Needs root, iproute2 and nftables.

use std::time::Duration;

use census_e2e::chaos::Run;
use census_e2e::eventually;
use serde_json::Value;

/// A server's Raft view: (state, term, applied index), from `/v1/agent/self`.
async fn raft(run: &Run, i: usize) -> Option<(String, u64, u64)> {
    let url = format!("http://{}/v1/agent/self", run.servers[i].http_addr());
    let http = reqwest::Client::new();
    let body: Value = http.get(url).timeout(Duration::from_secs(2)).send().await.ok()?.json().await.ok()?;
    let raft = &body["Stats"]["raft"];
    let number = |k: &str| raft[k].as_str().and_then(|s| s.parse().ok());
    Some((raft["state"].as_str()?.to_string(), number("term")?, number("applied_index")?))
}

/// A Prometheus gauge of server `i`.
async fn gauge(run: &Run, i: usize, name: &str) -> Option<f64> {
    census_e2e::gauge(&run.servers[i].http_addr(), name).await
}

async fn status_leader(run: &Run, i: usize) -> Option<String> {
    let url = format!("http://{}/v1/status/leader", run.servers[i].http_addr());
    reqwest::get(url).await.ok()?.json().await.ok()
}

async fn put(run: &Run, i: usize, key: &str, value: &str) -> bool {
    let url = format!("http://{}/v1/kv/{key}", run.servers[i].http_addr());
    let http = reqwest::Client::new();
    let resp = http.put(url).body(value.to_string()).timeout(Duration::from_secs(10)).send().await;
    resp.is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_off_follower_does_not_raise_its_term_and_rejoins_without_an_election() {
    let run = Run::start().await;
    let leader = run.wait_for_leader().await;
    let follower = (leader + 1) % 3;
    let (_, term, _) = raft(&run, leader).await.expect("leader's raft stats");

    run.lan.isolate(follower);
    // Cut off for three seconds: several election timeouts (300-600 ms).
    eventually(Duration::from_secs(20), "three seconds without the leader", || async {
        (gauge(&run, follower, "census_raft_last_contact_seconds").await? >= 3.0).then_some(())
    })
    .await;
    assert_eq!(
        status_leader(&run, follower).await.as_deref(),
        Some(""),
        "a cut-off follower knows no leader"
    );
    let (_, cut_off_term, _) = raft(&run, follower).await.expect("follower's raft stats");
    assert_eq!(cut_off_term, term, "the cut-off follower raised its term");
    let lost = gauge(&run, follower, "census_raft_prevotes_lost").await.expect("prevotes gauge");
    assert!(lost >= 2.0, "it asked for pre-votes (and lost them) {lost} times, not repeatedly");
    assert!(put(&run, leader, "while-cut-off", "x").await, "the majority takes writes");
    run.lan.heal(follower);

    assert!(put(&run, leader, "after-heal", "y").await, "a write after the heal");
    let (_, _, index) = raft(&run, leader).await.expect("leader's raft stats");
    eventually(Duration::from_secs(20), "the follower to catch up", || async {
        let (_, _, applied) = raft(&run, follower).await?;
        (applied >= index).then_some(())
    })
    .await;
    for i in 0..3 {
        let (state, now_term, _) = raft(&run, i).await.expect("raft stats");
        assert_eq!(now_term, term, "n{i} is in term {now_term}: an election happened");
        assert_eq!(state == "Leader", i == leader, "n{i} is {state}: leadership moved");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_off_leader_stops_leading_and_rejoins_as_a_follower() {
    let run = Run::start().await;
    let old = run.wait_for_leader().await;
    let (_, old_term, _) = raft(&run, old).await.expect("leader's raft stats");

    run.lan.isolate(old);
    let (new, new_term) = eventually(Duration::from_secs(20), "the majority to elect a leader", || async {
        for i in (0..3).filter(|i| *i != old) {
            if let Some((state, term, _)) = raft(&run, i).await
                && state == "Leader"
            {
                return Some((i, term));
            }
        }
        None
    })
    .await;
    assert!(new_term > old_term);
    // Check-quorum: the old leader cannot reach a quorum, so it says no leader is known.
    eventually(Duration::from_secs(20), "the cut-off leader to stop calling itself leader", || async {
        status_leader(&run, old).await?.is_empty().then_some(())
    })
    .await;
    let (state, _, _) = raft(&run, old).await.expect("old leader's raft stats");
    assert_ne!(state, "Leader");
    assert!(put(&run, new, "while-cut-off", "x").await, "the majority takes writes");
    run.lan.heal(old);

    assert!(put(&run, new, "after-heal", "y").await, "a write after the heal");
    let (_, _, index) = raft(&run, new).await.expect("leader's raft stats");
    eventually(Duration::from_secs(20), "the old leader to follow the new one", || async {
        let (state, term, applied) = raft(&run, old).await?;
        (state == "Follower" && term == new_term && applied >= index).then_some(())
    })
    .await;
    let (state, term, _) = raft(&run, new).await.expect("new leader's raft stats");
    assert_eq!((state.as_str(), term), ("Leader", new_term), "the heal caused an election");
}
