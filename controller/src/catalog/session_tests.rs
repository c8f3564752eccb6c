//! Sessions and locks, applied directly to the state.

use super::*;

fn setup() -> CatalogState {
    let mut state = CatalogState::default();
    let reg = Command::Register(Registration {
        node: NodeSpec { name: "n1".into(), address: "10.0.0.1".into(), ..Default::default() },
        checks: vec![CheckRegistration {
            id: "serfHealth".into(),
            name: "Serf Health Status".into(),
            status: Some(CheckStatus::Passing),
            notes: String::new(),
            output: String::new(),
            service_id: String::new(),
            spec: CheckSpec::default(),
        }],
        ..Default::default()
    });
    assert_eq!(state.apply(1, &reg).0, CommandResult::Done);
    state
}

fn session(id: &str, behavior: SessionBehavior, lock_delay_ms: u64) -> Command {
    Command::SessionCreate(SessionSpec {
        id: id.into(),
        node: "n1".into(),
        lock_delay_ms,
        behavior,
        ttl_ms: 10_000,
        node_checks: vec!["serfHealth".into()],
        ..Default::default()
    })
}

fn lock(key: &str, session: &str, now_ms: u64) -> Command {
    Command::KvLock { key: key.into(), value: b"v".to_vec(), flags: 0, session: session.into(), now_ms }
}

fn unlock(key: &str, session: &str) -> Command {
    Command::KvUnlock { key: key.into(), value: b"done".to_vec(), flags: 0, session: session.into() }
}

#[test]
fn lock_index_counts_acquisitions_and_only_the_holder_releases() {
    let mut state = setup();
    state.apply(2, &session("a", SessionBehavior::Release, 0));
    state.apply(3, &session("b", SessionBehavior::Release, 0));
    assert_eq!(state.apply(4, &lock("k", "a", 0)).0, CommandResult::Bool(true));
    assert_eq!(state.kv_get("k").map(|r| (r.lock_index, r.session.clone())), Some((1, Some("a".into()))));
    // re-acquiring by the holder updates the value but not LockIndex
    assert_eq!(state.apply(5, &lock("k", "a", 0)).0, CommandResult::Bool(true));
    assert_eq!(state.kv_get("k").map(|r| r.lock_index), Some(1));
    // another session can neither acquire nor release
    assert_eq!(state.apply(6, &lock("k", "b", 0)).0, CommandResult::Bool(false));
    assert_eq!(state.apply(7, &unlock("k", "b")).0, CommandResult::Bool(false));
    // a plain write to a locked key succeeds and keeps the lock
    state.apply(8, &Command::KvSet { key: "k".into(), value: b"w".to_vec(), flags: 0, cas: None });
    assert_eq!(state.kv_get("k").and_then(|r| r.session.clone()), Some("a".into()));
    // the holder releases: session cleared, value written, LockIndex unchanged
    assert_eq!(state.apply(9, &unlock("k", "a")).0, CommandResult::Bool(true));
    let record = state.kv_get("k").cloned().expect("key kept");
    assert_eq!((record.session, record.value, record.lock_index), (None, b"done".to_vec(), 1));
    // an explicit release starts no lock-delay
    assert_eq!(state.apply(10, &lock("k", "b", 0)).0, CommandResult::Bool(true));
    assert_eq!(state.kv_get("k").map(|r| r.lock_index), Some(2));
}

#[test]
fn invalidation_releases_and_starts_lock_delay() {
    let mut state = setup();
    state.apply(2, &session("a", SessionBehavior::Release, 15_000));
    state.apply(3, &session("b", SessionBehavior::Release, 15_000));
    state.apply(4, &lock("k", "a", 1_000));
    state.apply(5, &Command::SessionDestroy { id: "a".into(), now_ms: 2_000 });
    assert!(state.session("a").is_none());
    assert_eq!(state.kv_get("k").map(|r| (r.session.clone(), r.modify_index)), Some((None, 5)));
    assert_eq!(state.lock_delay("k", 2_000), Some(17_000));
    assert_eq!(state.apply(6, &lock("k", "b", 16_999)).0, CommandResult::Bool(false));
    assert_eq!(state.apply(7, &lock("k", "b", 17_000)).0, CommandResult::Bool(true));
    assert_eq!(state.kv_get("k").map(|r| r.lock_index), Some(2));
}

#[test]
fn delete_behavior_removes_the_keys() {
    let mut state = setup();
    state.apply(2, &session("eph", SessionBehavior::Delete, 0));
    state.apply(3, &lock("services/me", "eph", 0));
    let (_, changes) = state.apply(4, &Command::SessionDestroy { id: "eph".into(), now_ms: 0 });
    assert!(state.kv_get("services/me").is_none());
    assert!(changes.kv_keys.contains("services/me"));
    assert_eq!(state.kv_prefix_index("services/"), 4);
}

#[test]
fn expiry_loses_to_a_renewal_it_did_not_see() {
    let mut state = setup();
    state.apply(2, &session("a", SessionBehavior::Release, 0));
    assert_eq!(state.apply(3, &Command::SessionRenew { id: "a".into() }).0, CommandResult::Done);
    assert_eq!(state.session("a").map(|s| s.renew_index), Some(3));
    let stale = Command::SessionExpire { id: "a".into(), renew_index: 2, now_ms: 0 };
    assert_eq!(state.apply(4, &stale).0, CommandResult::Bool(false));
    assert!(state.session("a").is_some());
    let current = Command::SessionExpire { id: "a".into(), renew_index: 3, now_ms: 0 };
    assert_eq!(state.apply(5, &current).0, CommandResult::Bool(true));
    assert!(state.session("a").is_none());
    assert!(matches!(
        state.apply(6, &Command::SessionRenew { id: "a".into() }).0,
        CommandResult::Rejected(_)
    ));
}

#[test]
fn sessions_need_a_live_node_and_healthy_checks() {
    let mut state = setup();
    let on = |node: &str, checks: Vec<String>| {
        Command::SessionCreate(SessionSpec {
            id: format!("s-{node}-{}", checks.len()),
            node: node.into(),
            node_checks: checks,
            ..Default::default()
        })
    };
    assert!(matches!(state.apply(2, &on("ghost", vec![])).0, CommandResult::Rejected(_)));
    assert!(matches!(state.apply(3, &on("n1", vec!["nope".into()])).0, CommandResult::Rejected(_)));
    state.apply(
        4,
        &Command::UpdateCheck {
            node: "n1".into(),
            check_id: "serfHealth".into(),
            status: CheckStatus::Critical,
            output: String::new(),
        },
    );
    let refused = state.apply(5, &on("n1", vec!["serfHealth".into()])).0;
    assert_eq!(refused, CommandResult::Rejected("Check 'serfHealth' is in critical state".into()));
    // a session bound to no checks only needs its node
    assert_eq!(state.apply(6, &on("n1", vec![])).0, CommandResult::Done);
    // and a lock is refused once its session's node is gone
    state.apply(7, &Command::DeregisterNode { node: "n1".into() });
    assert!(matches!(state.apply(8, &lock("k", "s-n1-0", 0)).0, CommandResult::Rejected(_)));
    assert!(matches!(state.apply(9, &lock("k", "missing", 0)).0, CommandResult::Rejected(_)));
}
