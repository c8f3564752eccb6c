//! Sessions and locks on real servers: TTL and lock-delay bounds on a 3-server cluster (also
//! across a leader kill), and `census lock` processes handing a lock back and forth.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use census_client::session::{LockDelay, SessionRequest};
use census_client::{Client, QueryOptions};
use census_e2e::{Cluster, census_bin, eventually, single_server};

fn session(ttl: &str, lock_delay_s: u64) -> SessionRequest {
    SessionRequest {
        name: "e2e".into(),
        ttl: ttl.into(),
        lock_delay: Some(LockDelay::Number(lock_delay_s)),
        node_checks: Some(Vec::new()),
        ..Default::default()
    }
}

/// Waits, with blocking queries, until `key` has no lock holder; returns when that was seen.
async fn wait_unlocked(client: &Client, key: &str, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    let mut index = 0;
    loop {
        assert!(Instant::now() < deadline, "{key} still locked after {within:?}");
        let opts = QueryOptions::blocking(index, Duration::from_secs(2));
        match client.kv_get(key, &opts).await {
            Ok((Some(pair), _)) if pair.session.is_none() => return Instant::now(),
            Ok((_, meta)) => index = meta.last_index,
            // The server asked may be the one just killed, or between leaders.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_ttl_frees_the_lock_only_after_lock_delay() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    // Through a follower: session writes are forwarded like any other.
    let client = cluster.agents[cluster.other_than(leader)].client();
    let created = Instant::now();
    let a = client.session_create(&session("10s", 3)).await.expect("session A");
    let b = client.session_create(&session("", 3)).await.expect("session B");
    assert!(client.kv_acquire("svc/leader", &a, b"A", None).await.expect("acquire A"));
    assert!(!client.kv_acquire("svc/leader", &b, b"B", None).await.expect("B refused"));

    // A never renews: the lock is freed two TTLs after creation (Consul's multiplier), not before.
    let released = wait_unlocked(&client, "svc/leader", Duration::from_secs(30)).await;
    let held_for = released - created;
    assert!(held_for >= Duration::from_secs(20), "released after {held_for:?}, before 2 x TTL");
    assert!(held_for <= Duration::from_secs(22), "released after {held_for:?}");
    let (sessions, _) = client.session_list(&QueryOptions::default()).await.expect("list");
    assert!(sessions.iter().all(|s| s.id != a), "A is gone");

    // B is refused during the 3 s lock-delay, then gets it with a higher LockIndex.
    assert!(!client.kv_acquire("svc/leader", &b, b"B", None).await.expect("in lock-delay"));
    let acquired = eventually(Duration::from_secs(6), "B to acquire after lock-delay", || async {
        client.kv_acquire("svc/leader", &b, b"B", None).await.ok().filter(|ok| *ok).map(|_| Instant::now())
    })
    .await;
    let waited = acquired - released;
    eprintln!(
        "TTL 10s (expiry at 2 x TTL): released after {held_for:?}; lock-delay 3s: reacquired {waited:?} after release"
    );
    assert!(waited >= Duration::from_millis(2_800), "acquired {waited:?} after release, inside lock-delay");
    assert!(waited <= Duration::from_millis(4_500), "acquired {waited:?} after release");
    let (pair, _) = client.kv_get("svc/leader", &QueryOptions::default()).await.expect("get");
    let pair = pair.expect("key kept");
    assert_eq!(pair.session.as_deref(), Some(b.as_str()));
    assert_eq!(pair.lock_index, 2, "LockIndex counts both acquisitions");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_leader_mid_ttl_neither_frees_the_lock_early_nor_keeps_it_past_two_ttls() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let survivor = cluster.other_than(leader);
    // A session belongs to the agent's node, which must be in the catalog first (as in Consul).
    cluster.agents[survivor].wait_registered().await;
    let client = cluster.agents[survivor].client();
    let created = Instant::now();
    let a = client.session_create(&session("10s", 0)).await.expect("session A");
    assert!(client.kv_acquire("job/lock", &a, b"A", None).await.expect("acquire"));

    // Let part of the TTL pass, then take the leader (and its TTL timers) away.
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.agents[leader].kill();
    let released = wait_unlocked(&client, "job/lock", Duration::from_secs(40)).await;
    let held_for = released - created;
    eprintln!("TTL 10s, leader killed at 4s: released after {held_for:?}");
    assert!(held_for >= Duration::from_secs(20), "freed after {held_for:?}: earlier than 2 x TTL");
    // The new leader gives a full 2 x TTL from its takeover: 4 s + an election + 20 s.
    assert!(held_for <= Duration::from_secs(28), "held for {held_for:?}: past 2 x TTL after the takeover");
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
}

/// Two processes, each running `census lock` 25 times on one prefix; the child increments a
/// counter file slowly (read, pause, write) and marks overlap with an exclusive directory.
#[tokio::test(flavor = "multi_thread")]
async fn two_census_lock_processes_never_run_their_children_at_once() {
    let (agent, dir) = single_server("locker", &[]).await;
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    std::fs::write(work.join("count"), "0").expect("counter");
    let child = format!(
        "cd {} && if ! mkdir held 2>/dev/null; then echo overlap >> overlaps; fi; \
         n=$(cat count); sleep 0.02; echo $((n+1)) > count; \
         [ \"$CONSUL_LOCK_HELD\" = true ] || echo no-env >> overlaps; rmdir held",
        work.display()
    );
    let addr = agent.http_addr();
    let began = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (child, addr) = (child.clone(), addr.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let status = Command::new(census_bin())
                        .args(["lock", &format!("-http-addr={addr}"), "jobs/counter", &child])
                        .status()
                        .expect("run census lock");
                    assert!(status.success(), "census lock failed: {status}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    eprintln!("50 census lock runs by 2 processes in {:?}", began.elapsed());
    assert!(!Path::new(&work.join("overlaps")).exists(), "children overlapped");
    let count = std::fs::read_to_string(work.join("count")).expect("count");
    assert_eq!(count.trim(), "50", "every child ran once, none lost an update");
    // Each run destroyed its session and left the lock free.
    let client = agent.client();
    let (sessions, _) = client.session_list(&QueryOptions::default()).await.expect("list");
    assert!(sessions.is_empty(), "sessions left behind: {sessions:?}");
    let (pair, _) = client.kv_get("jobs/counter/.lock", &QueryOptions::default()).await.expect("get");
    assert_eq!(pair.and_then(|p| p.session), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_semaphore_admits_at_most_n_children() {
    let (agent, dir) = single_server("sem", &[]).await;
    let work = dir.path().join("slots");
    std::fs::create_dir_all(&work).expect("dir");
    // Each child marks itself, counts the marks, and records more than 2 at once.
    let child = format!(
        "cd {} && touch h.$$ && [ $(ls h.* | wc -l) -le 2 ] || echo $(ls h.* | wc -l) >> over; \
         sleep 0.05; rm h.$$; echo x >> ran",
        work.display()
    );
    let addr = agent.http_addr();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (child, addr) = (child.clone(), addr.clone());
            std::thread::spawn(move || {
                for _ in 0..6 {
                    let status = Command::new(census_bin())
                        .args(["lock", "-n=2", &format!("-http-addr={addr}"), "pool", &child])
                        .status()
                        .expect("run census lock");
                    assert!(status.success(), "census lock -n failed: {status}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    assert!(!work.join("over").exists(), "more than 2 children at once");
    let ran = std::fs::read_to_string(work.join("ran")).expect("ran");
    assert_eq!(ran.lines().count(), 18);
}

/// The lock is taken away (its session destroyed): the child gets SIGTERM at once and
/// `census lock` exits 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_lock_terminates_the_child() {
    let (agent, dir) = single_server("loser", &[]).await;
    let marker = dir.path().join("terminated");
    let started = dir.path().join("started");
    let child = format!(
        "trap 'echo term > {}; exit 0' TERM; touch {}; while true; do sleep 0.1; done",
        marker.display(),
        started.display()
    );
    let mut lock = Command::new(census_bin())
        .args(["lock", &format!("-http-addr={}", agent.http_addr()), "batch", &child])
        .spawn()
        .expect("census lock");
    eventually(Duration::from_secs(10), "the child to start", || async { started.exists().then_some(()) })
        .await;
    let client = agent.client();
    let (sessions, _) = client.session_list(&QueryOptions::default()).await.expect("list");
    let held = sessions.iter().find(|s| s.name == "census lock").expect("the lock's session");
    let destroyed = Instant::now();
    assert!(client.session_destroy(&held.id).await.expect("destroy"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = lock.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "census lock still running 10 s after losing its lock");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(status.code(), Some(1), "lost lock is a failure");
    assert!(marker.exists(), "the child got SIGTERM");
    assert!(destroyed.elapsed() < Duration::from_secs(3), "took {:?}", destroyed.elapsed());
}
