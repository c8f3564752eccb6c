//! The leader's timers on a paused tokio clock: a one-server Raft in memory leads, and the
//! runtime moves time to the next timer whenever every task waits, so a 60 s deadline takes no
//! wall time and its moment can be checked within a second or two.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{reaper, session_monitor};
use crate::catalog::{
    Catalog, CheckRegistration, CheckSpec, CheckStatus, Command, NodeSpec, Registration, ServiceSpec,
    SessionSpec,
};
use crate::raft::{ClusterNode, RaftTiming, ServerNode};

async fn leader() -> Arc<ClusterNode> {
    let me =
        ServerNode { name: "n1".into(), raft_addr: "127.0.0.1:1".into(), http_addr: "127.0.0.1:2".into() };
    let node = ClusterNode::start(
        1,
        me.clone(),
        None,
        RaftTiming::default(),
        Arc::new(Catalog::new()),
        crate::raft::network::PeerTransport::new().expect("transport"),
    )
    .await
    .expect("start an in-memory server");
    node.raft.initialize(BTreeMap::from([(1, me)])).await.expect("initialize");
    while !node.is_leader() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node
}

fn node(name: &str) -> NodeSpec {
    NodeSpec { name: name.into(), address: "10.0.0.1".into(), ..Default::default() }
}

/// Time passes until `at` (from the test's start), while the leader's tasks run.
async fn until(start: tokio::time::Instant, at: Duration) {
    tokio::time::sleep_until(start + at).await;
}

/// When (since `start`) `done` first holds, looked at every 100 ms of the paused clock. (The
/// leader's write that makes it hold runs partly on blocking threads, during which the runtime
/// counts as idle and moves time on: a bound of a second or two, not an exact instant.)
async fn first_time(start: tokio::time::Instant, done: impl Fn() -> bool) -> Duration {
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(600), "never");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_critical_service_is_reaped_exactly_after_deregister_critical_service_after() {
    let leader = leader().await;
    let check = CheckRegistration {
        id: "service:web".into(),
        name: "web".into(),
        status: Some(CheckStatus::Critical),
        service_id: "web".into(),
        notes: String::new(),
        output: String::new(),
        spec: CheckSpec { deregister_critical_after_ms: 60_000, ..Default::default() },
    };
    let register = Command::Register(Registration {
        node: node("a"),
        service: Some(ServiceSpec { id: "web".into(), name: "web".into(), port: 80, ..Default::default() }),
        checks: vec![check],
        ..Default::default()
    });
    leader.write(register).await.expect("register");
    let start = tokio::time::Instant::now();
    tokio::spawn(reaper::reap_critical_services(leader.clone()));
    let present = || leader.catalog.read(|s| s.node_services("a").len());
    until(start, Duration::from_secs(59)).await;
    assert_eq!(present(), 1, "not yet at 59 s");
    let reaped = first_time(start, || present() == 0).await;
    assert!(reaped >= Duration::from_secs(60) && reaped < Duration::from_secs(62), "reaped at {reaped:?}");
}

#[tokio::test(start_paused = true)]
async fn a_session_expires_after_twice_its_ttl_and_a_renewal_restarts_the_clock() {
    let leader = leader().await;
    leader
        .write(Command::Register(Registration { node: node("a"), ..Default::default() }))
        .await
        .expect("node");
    let session = SessionSpec { id: "s1".into(), node: "a".into(), ttl_ms: 10_000, ..Default::default() };
    leader.write(Command::SessionCreate(session)).await.expect("session");
    let start = tokio::time::Instant::now();
    tokio::spawn(session_monitor::run(leader.clone()));
    let alive = || leader.catalog.read(|s| s.sessions().any(|r| r.spec.id == "s1"));
    // Renewed at about 15 s: the 20 s lifetime (Consul's TTL × 2) starts again there. (The
    // write itself takes some paused-clock time: the bounds are its start and its end.)
    until(start, Duration::from_secs(15)).await;
    let asked = start.elapsed();
    leader.write(Command::SessionRenew { id: "s1".into() }).await.expect("renew");
    let renewed = start.elapsed();
    let lifetime = Duration::from_secs(20);
    until(start, asked + lifetime - Duration::from_secs(1)).await;
    assert!(alive(), "alive a second before the renewed lifetime ends");
    let expired = first_time(start, || !alive()).await;
    assert!(
        expired >= asked + lifetime && expired < renewed + lifetime + Duration::from_secs(2),
        "renewed between {asked:?} and {renewed:?}, expired at {expired:?}"
    );
}
