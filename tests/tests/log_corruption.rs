//! A Raft log damaged in the middle of an older segment (bit rot, not a torn tail): the server
//! sets the damaged log aside, says so in its log, rebuilds its log from the leader and serves
//! every acknowledged write again. While it rebuilds it does not vote, so a candidate that lacks
//! writes the damaged server had acknowledged cannot win with its help (they would be lost from
//! the whole cluster). Real servers on loopback; the damage is one byte flipped in a segment file
//! while its server is down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use census_client::{Consistency, KvWriteOptions, QueryOptions};
use census_e2e::{Agent, Cluster, eventually, gauge};

const RECOVERING: &str = "census_raft_recovering";

/// The oldest WAL segment of `agent`.
fn first_segment(agent: &Agent) -> PathBuf {
    let dir = agent.data_dir.join("raft").join("raft-log");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("segment dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 2, "a restart starts a new segment: {segments:?}");
    segments.swap_remove(0)
}

/// Flips one byte halfway through `path`.
fn damage_middle(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read segment");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).expect("write segment");
}

async fn write_keys(agent: &Agent, prefix: &str, n: usize, value: &str) {
    let client = agent.client();
    for i in 0..n {
        let key = format!("{prefix}/{i}");
        let written = client.kv_put(&key, value.as_bytes(), KvWriteOptions::default()).await;
        assert!(matches!(written, Ok(true)), "{key}: {written:?}");
    }
}

/// Whether `agent` holds every key of `prefix` with `value`, read with `consistency`.
async fn holds(agent: &Agent, prefix: &str, n: usize, value: &str, consistency: Consistency) -> bool {
    let client = agent.client();
    let opts = QueryOptions { consistency, ..QueryOptions::default() };
    for i in 0..n {
        let Ok((Some(pair), _)) = client.kv_get(&format!("{prefix}/{i}"), &opts).await else {
            return false;
        };
        let decoded = pair
            .value
            .and_then(|v| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v).ok());
        if decoded.as_deref() != Some(value.as_bytes()) {
            return false;
        }
    }
    true
}

/// Restarts `agent` (its log then continues in a new segment) and waits until it serves `prefix`.
async fn restart_and_catch_up(agent: &mut Agent, prefix: &str, n: usize, value: &str) {
    agent.kill();
    agent.start();
    eventually(Duration::from_secs(30), "the restarted server to catch up", || async {
        holds(agent, prefix, n, value, Consistency::Stale).await.then_some(())
    })
    .await;
}

fn set_aside_dirs(agent: &Agent) -> usize {
    std::fs::read_dir(agent.data_dir.join("raft"))
        .expect("raft dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("raft-log.corrupt-"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_with_a_damaged_log_rebuilds_it_from_the_leader_and_votes_again() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let f = cluster.other_than(leader);
    let value = "v".repeat(2048);
    write_keys(&cluster.agents[leader], "a", 100, &value).await;
    restart_and_catch_up(&mut cluster.agents[f], "a", 100, &value).await;
    write_keys(&cluster.agents[leader], "b", 50, &value).await;
    eventually(Duration::from_secs(30), "the follower to hold the second writes", || async {
        holds(&cluster.agents[f], "b", 50, &value, Consistency::Stale).await.then_some(())
    })
    .await;

    cluster.agents[f].kill();
    damage_middle(&first_segment(&cluster.agents[f]));
    cluster.agents[f].start();
    let addr = cluster.agents[f].http_addr();
    let rebuilt = tokio::time::timeout(Duration::from_secs(60), async {
        while !(gauge(&addr, RECOVERING).await == Some(0.0)
            && holds(&cluster.agents[f], "a", 100, &value, Consistency::Stale).await
            && holds(&cluster.agents[f], "b", 50, &value, Consistency::Stale).await)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(rebuilt.is_ok(), "the damaged follower did not rebuild its log:\n{}", cluster.diagnostics());
    let log = cluster.agents[f].log();
    assert!(log.contains("corrupt in the middle"), "the damage is not in the server's log:\n{log}");
    assert_eq!(set_aside_dirs(&cluster.agents[f]), 1, "the damaged segments are kept aside");

    // It votes again: without the leader, it and the other follower elect one.
    cluster.agents[leader].kill();
    let new_leader = eventually(Duration::from_secs(30), "a new leader", || async {
        cluster.leader().await.filter(|l| *l != leader)
    })
    .await;
    write_keys(&cluster.agents[new_leader], "c", 1, "after").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_rebuilding_its_log_does_not_vote_away_writes_it_had_acknowledged() {
    let mut cluster = Cluster::start(3).await;
    let a = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let b = cluster.other_than(a);
    let c = (0..3).find(|i| *i != a && *i != b).expect("a third server");
    // C misses the writes; A and B commit them.
    cluster.agents[c].kill();
    let value = "w".repeat(4096);
    write_keys(&cluster.agents[a], "w", 50, &value).await;
    // B's copy goes to an older segment, which is then damaged: B has lost them.
    restart_and_catch_up(&mut cluster.agents[b], "w", 50, &value).await;
    cluster.agents[b].kill();
    cluster.agents[a].kill();
    damage_middle(&first_segment(&cluster.agents[b]));

    // B and C alone: C's log lacks the writes, and B, rebuilding, refuses to vote for it.
    cluster.agents[b].start();
    cluster.agents[c].start();
    let (b_addr, c_addr) = (cluster.agents[b].http_addr(), cluster.agents[c].http_addr());
    eventually(Duration::from_secs(30), "C's pre-votes to fail", || async {
        (gauge(&c_addr, "census_raft_prevotes_lost").await? >= 3.0).then_some(())
    })
    .await;
    assert_eq!(
        gauge(&b_addr, RECOVERING).await,
        Some(1.0),
        "B is still rebuilding (no leader to rebuild from)"
    );
    assert_eq!(cluster.leader().await, None, "a leader was elected without the acknowledged writes");

    // A returns: it has the writes and wins; B rebuilds from it; nothing acknowledged was lost.
    cluster.agents[a].start();
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    assert!(
        holds(&cluster.agents[leader], "w", 50, &value, Consistency::Consistent).await,
        "acknowledged writes were lost"
    );
    eventually(Duration::from_secs(60), "B to rebuild its log", || async {
        (gauge(&b_addr, RECOVERING).await == Some(0.0)).then_some(())
    })
    .await;
    assert!(holds(&cluster.agents[b], "w", 50, &value, Consistency::Stale).await);
}
