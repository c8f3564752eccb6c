use super::*;

fn node(name: &str) -> NodeSpec {
    NodeSpec { name: name.into(), address: "10.0.0.1".into(), datacenter: "dc1".into(), ..Default::default() }
}

fn web(node_name: &str, id: &str, check_status: Option<CheckStatus>) -> Command {
    Command::Register(Registration {
        node: node(node_name),
        service: Some(ServiceSpec {
            id: id.into(),
            name: "web".into(),
            port: 80,
            tags: vec!["v1".into()],
            ..Default::default()
        }),
        checks: vec![CheckRegistration {
            id: format!("service:{id}"),
            name: "web check".into(),
            status: check_status,
            notes: String::new(),
            output: String::new(),
            service_id: id.into(),
            spec: CheckSpec::default(),
        }],
        ..Default::default()
    })
}

fn kv_set(key: &str, value: &str, cas: Option<u64>) -> Command {
    Command::KvSet { key: key.into(), value: value.as_bytes().to_vec(), flags: 0, cas }
}

#[test]
fn register_creates_node_service_and_check_with_indexes() {
    let mut state = CatalogState::default();
    let (result, changes) = state.apply(5, &web("n1", "web-1", None));
    assert_eq!(result, CommandResult::Done);
    assert!(changes.tables.contains(&Table::Services));
    let svc = state.service("n1", "web-1").expect("service registered");
    assert_eq!((svc.create_index, svc.modify_index), (5, 5));
    let check = state.check("n1", "service:web-1").expect("check registered");
    assert_eq!(check.status, CheckStatus::Critical, "checks start critical");
    assert_eq!(check.service_name, "web");
    assert_eq!(state.service_name_index("web"), 5);
}

#[test]
fn identical_reregistration_changes_nothing() {
    let mut state = CatalogState::default();
    state.apply(5, &web("n1", "web-1", Some(CheckStatus::Passing)));
    let (_, changes) = state.apply(6, &web("n1", "web-1", Some(CheckStatus::Passing)));
    assert!(changes.is_empty(), "no change expected, got {changes:?}");
    assert_eq!(state.service("n1", "web-1").map(|s| s.modify_index), Some(5));
}

#[test]
fn reregistration_without_status_keeps_the_check_status() {
    let mut state = CatalogState::default();
    state.apply(5, &web("n1", "web-1", None));
    state.apply(
        6,
        &Command::UpdateCheck {
            node: "n1".into(),
            check_id: "service:web-1".into(),
            status: CheckStatus::Passing,
            output: "ok".into(),
        },
    );
    state.apply(7, &web("n1", "web-1", None));
    assert_eq!(state.check("n1", "service:web-1").map(|c| c.status), Some(CheckStatus::Passing));
}

#[test]
fn rejected_registration_writes_nothing() {
    let mut state = CatalogState::default();
    let bad = Command::Register(Registration {
        node: node("n1"),
        checks: vec![CheckRegistration {
            id: "c".into(),
            name: "c".into(),
            status: None,
            notes: String::new(),
            output: String::new(),
            service_id: "missing".into(),
            spec: CheckSpec::default(),
        }],
        ..Default::default()
    });
    let (result, changes) = state.apply(3, &bad);
    assert!(matches!(result, CommandResult::Rejected(ref m) if m.contains("missing")), "{result:?}");
    assert!(changes.is_empty());
    assert!(state.node("n1").is_none(), "node must not be written by a rejected registration");
}

#[test]
fn passing_filter_excludes_warning_and_critical() {
    let mut state = CatalogState::default();
    state.apply(1, &web("n1", "a", Some(CheckStatus::Passing)));
    state.apply(2, &web("n2", "b", Some(CheckStatus::Warning)));
    state.apply(3, &web("n3", "c", Some(CheckStatus::Critical)));
    let passing: Vec<String> = state.health_of("web", &[], true).into_iter().map(|h| h.service.id).collect();
    assert_eq!(passing, vec!["a"]);
    assert_eq!(state.health_of("web", &[], false).len(), 3);
    assert_eq!(state.health_of("web", &["V1".into()], false).len(), 3, "tag match ignores case");
    assert!(state.health_of("web", &["v2".into()], false).is_empty());
}

#[test]
fn node_check_affects_every_service_on_the_node() {
    let mut state = CatalogState::default();
    state.apply(1, &web("n1", "a", Some(CheckStatus::Passing)));
    let node_check = Command::Register(Registration {
        node: node("n1"),
        checks: vec![CheckRegistration {
            id: "serfHealth".into(),
            name: "Serf Health Status".into(),
            status: Some(CheckStatus::Critical),
            notes: String::new(),
            output: String::new(),
            service_id: String::new(),
            spec: CheckSpec::default(),
        }],
        ..Default::default()
    });
    state.apply(2, &node_check);
    assert!(state.health_of("web", &[], true).is_empty());
    assert_eq!(state.service_name_index("web"), 2, "a node check bumps the service's index");
}

#[test]
fn deregister_node_removes_services_and_checks() {
    let mut state = CatalogState::default();
    state.apply(1, &web("n1", "a", None));
    state.apply(2, &Command::DeregisterNode { node: "n1".into() });
    assert!(state.node("n1").is_none());
    assert!(state.instances("web", &[]).is_empty());
    assert!(state.node_checks("n1").is_empty());
    assert_eq!(state.service_name_index("web"), 2);
    assert!(state.service_tags().is_empty());
}

#[test]
fn kv_cas_semantics() {
    let mut state = CatalogState::default();
    assert_eq!(state.apply(1, &kv_set("a", "1", Some(0))).0, CommandResult::Bool(true), "cas=0 creates");
    assert_eq!(
        state.apply(2, &kv_set("a", "2", Some(0))).0,
        CommandResult::Bool(false),
        "cas=0 refuses existing"
    );
    assert_eq!(
        state.apply(3, &kv_set("a", "3", Some(7))).0,
        CommandResult::Bool(false),
        "stale index refused"
    );
    assert_eq!(state.apply(4, &kv_set("a", "4", Some(1))).0, CommandResult::Bool(true), "matching index");
    let rec = state.kv_get("a").expect("key");
    assert_eq!((rec.value.as_slice(), rec.create_index, rec.modify_index), (&b"4"[..], 1, 4));
    assert_eq!(
        state.apply(5, &Command::KvDelete { key: "a".into(), cas: Some(0) }).0,
        CommandResult::Bool(false)
    );
    assert_eq!(
        state.apply(6, &Command::KvDelete { key: "a".into(), cas: Some(1) }).0,
        CommandResult::Bool(false)
    );
    assert_eq!(
        state.apply(7, &Command::KvDelete { key: "a".into(), cas: Some(4) }).0,
        CommandResult::Bool(true)
    );
    assert!(state.kv_get("a").is_none());
}

#[test]
fn kv_prefix_index_counts_deletes() {
    let mut state = CatalogState::default();
    state.apply(1, &kv_set("web/a", "1", None));
    state.apply(2, &kv_set("web/b", "1", None));
    state.apply(3, &kv_set("other", "1", None));
    assert_eq!(state.kv_prefix_index("web/"), 2);
    state.apply(4, &Command::KvDelete { key: "web/b".into(), cas: None });
    assert_eq!(state.kv_prefix_index("web/"), 4, "a delete moves the prefix index forward");
    state.apply(5, &Command::KvDeleteTree { prefix: "web/".into() });
    assert_eq!(state.kv_prefix_index("web/"), 5);
    assert!(state.kv_list("web/").is_empty());
    assert_eq!(state.kv_prefix_index("nothing/"), 1, "an index is never 0");
}

#[test]
fn kv_keys_with_separator() {
    let mut state = CatalogState::default();
    for (i, k) in ["web/bar", "web/foo", "web/subdir/x", "web/subdir/y", "zzz"].iter().enumerate() {
        state.apply(i as u64 + 1, &kv_set(k, "v", None));
    }
    assert_eq!(state.kv_keys("web/", Some("/")), vec!["web/bar", "web/foo", "web/subdir/"]);
    assert_eq!(state.kv_keys("web/", None).len(), 4);
}

#[test]
fn snapshot_round_trips() {
    let mut state = CatalogState::default();
    state.apply(1, &web("n1", "a", None));
    state.apply(2, &kv_set("k", "v", None));
    let bytes = state.to_bytes().expect("serialize");
    assert_eq!(CatalogState::from_bytes(&bytes).expect("deserialize"), state);
}

#[tokio::test]
async fn blocked_reader_wakes_on_matching_prefix_only() {
    let catalog = Catalog::new();
    let mut sub = catalog.hub().subscribe(&WatchKey::KvPrefix("web/".into()));
    catalog.apply(1, &kv_set("other/x", "1", None));
    let woke = tokio::time::timeout(std::time::Duration::from_millis(50), sub.changed()).await;
    assert!(woke.is_err(), "a write outside the prefix must not wake the reader");
    catalog.apply(2, &kv_set("web/x", "1", None));
    tokio::time::timeout(std::time::Duration::from_secs(5), sub.changed())
        .await
        .expect("a write under the prefix wakes the reader");
}

#[test]
fn a_batch_applies_each_write_at_one_index_with_its_own_result() {
    let catalog = Catalog::new();
    let set =
        |key: &str, cas: Option<u64>| Command::KvSet { key: key.into(), value: b"v".to_vec(), flags: 0, cas };
    let batch = Command::Batch(vec![set("a", None), set("b", Some(99)), set("c", Some(0))]);
    let result = catalog.apply(7, &batch);
    assert_eq!(
        result,
        CommandResult::Batch(vec![
            CommandResult::Bool(true),
            CommandResult::Bool(false),
            CommandResult::Bool(true)
        ])
    );
    catalog.read(|s| {
        assert_eq!(s.kv_get("a").map(|r| r.modify_index), Some(7));
        assert!(s.kv_get("b").is_none(), "a failed CAS writes nothing");
        assert_eq!(s.kv_get("c").map(|r| r.create_index), Some(7));
        assert_eq!(s.kv_prefix_index(""), 7);
    });
}
