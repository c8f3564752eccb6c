//! What a server does when its disk fails it: a full disk (a real tmpfs that fills) turns writes
//! away on the leader and takes them again once space returns; a follower whose disk fills for
//! real stops, the cluster goes on, and it catches up when restarted with room; an fsync error
//! (a preloaded library fails the call: tests/src/disk_faults.rs) stops the server before it
//! acknowledges the write, and nothing acknowledged before is lost. Needs root (mount) and gcc.

use std::time::Duration;

use census_e2e::disk_faults::{SmallDisk, failing_sync_library};
use census_e2e::{Agent, Cluster, eventually};

const MIB: u64 = 1 << 20;

async fn put(addr: &str, key: &str, value: &str) -> (u16, String) {
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v1/kv/{key}");
    match http.put(url).body(value.to_string()).timeout(Duration::from_secs(15)).send().await {
        Ok(resp) => (resp.status().as_u16(), resp.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// The raw value of `key` (`None`: 404), read with `mode` (`""`, `"stale"`).
async fn get(addr: &str, key: &str, mode: &str) -> Option<String> {
    let url = format!("http://{addr}/v1/kv/{key}?raw&{mode}");
    let resp = reqwest::get(url).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.text().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_turns_writes_away_until_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("n0");
    let disk = SmallDisk::mount(&data.join("raft"), 96 * MIB);
    let mut agent = Agent::new(
        "n0",
        data,
        vec!["-bootstrap-expect=1".into(), format!("-raft-min-free-bytes={}", 32 * MIB)],
    );
    agent.start();
    agent.wait_registered().await;
    let addr = agent.http_addr();
    assert_eq!(put(&addr, "before", "1").await.0, 200);

    disk.fill_leaving(16 * MIB);
    let mut attempt = 0;
    let (key, status, text) = eventually(Duration::from_secs(10), "a write to be turned away", || {
        attempt += 1;
        let key = format!("while-full-{attempt}");
        let addr = addr.clone();
        async move {
            let (status, text) = put(&addr, &key, "2").await;
            (status != 200).then_some((key, status, text))
        }
    })
    .await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("insufficient disk space"), "{text}");
    assert_eq!(get(&addr, &key, "").await, None, "a refused write was stored");
    assert_eq!(get(&addr, "before", "").await.as_deref(), Some("1"), "reads go on");

    disk.free_up();
    eventually(Duration::from_secs(10), "writes to be taken again", || async {
        (put(&addr, "after", "3").await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(get(&addr, "after", "").await.as_deref(), Some("3"));
    assert!(agent.is_running());
    agent.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_whose_disk_fills_stops_and_catches_up_once_restarted_with_room() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = cluster.other_than(leader);
    let leader_addr = cluster.agents[leader].http_addr();
    assert_eq!(put(&leader_addr, "before", "1").await.0, 200);

    // Restart the follower with its Raft directory on a small disk, then fill that disk.
    cluster.agents[follower].kill();
    let raft_dir = cluster.agents[follower].data_dir.join("raft");
    let moved = raft_dir.with_extension("moved");
    std::fs::rename(&raft_dir, &moved).expect("move the raft dir aside");
    let disk = SmallDisk::mount(&raft_dir, 48 * MIB);
    copy_dir(&moved, &raft_dir);
    cluster.agents[follower].start();
    let follower_addr = cluster.agents[follower].http_addr();
    eventually(Duration::from_secs(30), "the follower to be back", || async {
        get(&follower_addr, "before", "stale").await
    })
    .await;
    disk.fill_leaving(64 * 1024);

    // Writes go on through the leader (the other follower is its quorum); the full follower
    // fails a log write and stops.
    let value = "v".repeat(16 * 1024);
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let key = format!("k{i}");
        let (status, text) = put(&leader_addr, &key, &value).await;
        assert_eq!(status, 200, "{key}: {text}");
        acknowledged.push(key);
    }
    assert!(
        cluster.agents[follower].wait_exit(Duration::from_secs(30)),
        "the follower with a full disk did not stop"
    );
    let log = cluster.agents[follower].log();
    assert!(log.contains("the Raft log failed"), "the follower's log does not say why it stopped:\n{log}");

    disk.free_up();
    cluster.agents[follower].start();
    for key in &acknowledged {
        let mut got = None;
        for _ in 0..600 {
            got = get(&follower_addr, key, "stale").await;
            if got.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(got.as_ref(), Some(&value), "{key} on the restarted follower:\n{}", cluster.diagnostics());
    }
    cluster.agents[follower].kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_fsync_error_stops_the_server_before_it_acknowledges_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = failing_sync_library(dir.path());
    let trigger = dir.path().join("fail-sync");
    let mut agent = Agent::new("n0", dir.path().join("n0"), vec!["-bootstrap-expect=1".into()]);
    agent.env.push(("LD_PRELOAD".into(), library.display().to_string()));
    agent.env.push(("CENSUS_FAIL_SYNC_IF".into(), trigger.display().to_string()));
    agent.start();
    agent.wait_registered().await;
    let addr = agent.http_addr();
    for i in 0..20 {
        assert_eq!(put(&addr, &format!("k{i}"), "ok").await.0, 200);
    }

    std::fs::write(&trigger, b"").expect("trigger");
    let (status, text) = put(&addr, "unsynced", "x").await;
    assert_ne!(status, 200, "a write whose fsync failed was acknowledged: {text}");
    assert!(agent.wait_exit(Duration::from_secs(30)), "the server went on after an fsync error");
    let log = agent.log();
    assert!(log.contains("the Raft log failed"), "its log does not say why it stopped:\n{log}");

    std::fs::remove_file(&trigger).expect("remove the trigger");
    agent.env.clear();
    agent.start();
    agent.wait_registered().await;
    for i in 0..20 {
        assert_eq!(get(&addr, &format!("k{i}"), "").await.as_deref(), Some("ok"), "k{i} was lost");
    }
    agent.kill();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
