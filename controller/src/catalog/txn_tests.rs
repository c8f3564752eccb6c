//! Transactions: all or nothing.

use super::txn::{CatalogVerb, KvVerb, TxnError, TxnOp, TxnResult};
use super::*;

fn kv(verb: KvVerb, key: &str, value: &str, index: u64) -> TxnOp {
    TxnOp::Kv {
        verb,
        key: key.into(),
        value: value.as_bytes().to_vec(),
        flags: 0,
        index,
        session: String::new(),
    }
}

fn txn(ops: Vec<TxnOp>) -> Command {
    Command::Txn { ops, now_ms: 0 }
}

fn set(key: &str, value: &str) -> Command {
    Command::KvSet { key: key.into(), value: value.as_bytes().to_vec(), flags: 0, cas: None }
}

#[test]
fn a_failing_last_op_leaves_nothing_of_the_earlier_ones() {
    let mut state = CatalogState::default();
    state.apply(1, &set("keep", "old"));
    state.apply(2, &set("gone/a", "1"));
    let before = state.clone();
    let ops = vec![
        kv(KvVerb::Set, "new", "x", 0),
        kv(KvVerb::Set, "keep", "changed", 0),
        kv(KvVerb::DeleteTree, "gone/", "", 0),
        kv(KvVerb::Cas, "keep", "again", 99),
    ];
    let (result, changes) = state.apply(3, &txn(ops));
    assert_eq!(
        result,
        CommandResult::Txn(Err(vec![TxnError {
            op_index: 3,
            what: "failed to set key \"keep\", index is stale".into()
        }]))
    );
    assert!(changes.is_empty(), "nobody is woken: {changes:?}");
    let mut after = state.clone();
    after.last_index = before.last_index;
    assert_eq!(after, before, "every table and index as before");
    assert_eq!(state.last_index(), 3);
}

#[test]
fn a_successful_txn_applies_in_order_and_reads_its_own_writes() {
    let mut state = CatalogState::default();
    state.apply(1, &set("cfg/a", "1"));
    let ops = vec![
        kv(KvVerb::CheckIndex, "cfg/a", "", 1),
        kv(KvVerb::Cas, "cfg/a", "2", 1),
        kv(KvVerb::CheckNotExists, "cfg/b", "", 0),
        kv(KvVerb::Set, "cfg/b", "3", 0),
        kv(KvVerb::Get, "cfg/a", "", 0),
        kv(KvVerb::GetTree, "cfg/", "", 0),
        kv(KvVerb::GetOrEmpty, "cfg/none", "", 0),
        kv(KvVerb::DeleteCas, "cfg/b", "", 5),
    ];
    let (result, _) = state.apply(5, &txn(ops));
    let CommandResult::Txn(Ok(results)) = result else { panic!("txn failed: {result:?}") };
    let values: Vec<(String, Vec<u8>)> = results
        .iter()
        .map(|r| match r {
            TxnResult::Kv(k) => (k.key.clone(), k.value.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        vec![
            ("cfg/a".into(), vec![]),
            ("cfg/a".into(), vec![]),
            ("cfg/b".into(), vec![]),
            ("cfg/a".into(), b"2".to_vec()),
            ("cfg/a".into(), b"2".to_vec()),
            ("cfg/b".into(), b"3".to_vec()),
        ]
    );
    assert!(state.kv_get("cfg/b").is_none(), "deleted by the last op");
    assert_eq!(state.kv_get("cfg/a").map(|r| r.modify_index), Some(5));
}

#[test]
fn every_failure_is_reported_with_its_position() {
    let mut state = CatalogState::default();
    state.apply(1, &set("k", "v"));
    let ops = vec![
        kv(KvVerb::Get, "missing", "", 0),
        kv(KvVerb::CheckNotExists, "k", "", 0),
        kv(KvVerb::Set, "fine", "v", 0),
        kv(KvVerb::CheckSession, "k", "", 0),
        TxnOp::Node { verb: CatalogVerb::Get, node: "nope".into(), index: 0 },
    ];
    let (result, _) = state.apply(2, &txn(ops));
    let CommandResult::Txn(Err(errors)) = result else { panic!("expected failure: {result:?}") };
    assert_eq!(errors.iter().map(|e| e.op_index).collect::<Vec<_>>(), vec![0, 1, 3, 4]);
    assert!(state.kv_get("fine").is_none());
}

#[test]
fn a_rolled_back_node_delete_restores_its_services_and_checks() {
    let mut state = CatalogState::default();
    let reg = Command::Register(Registration {
        node: NodeSpec { name: "n1".into(), address: "10.0.0.1".into(), ..Default::default() },
        service: Some(ServiceSpec { id: "web-1".into(), name: "web".into(), port: 80, ..Default::default() }),
        checks: vec![CheckRegistration {
            id: "service:web-1".into(),
            name: "c".into(),
            status: Some(CheckStatus::Passing),
            notes: String::new(),
            output: String::new(),
            service_id: "web-1".into(),
            spec: CheckSpec::default(),
        }],
        ..Default::default()
    });
    state.apply(1, &reg);
    let before = state.clone();
    let ops = vec![
        TxnOp::Service { verb: CatalogVerb::Get, node: "n1".into(), service_id: "web-1".into(), index: 0 },
        TxnOp::Node { verb: CatalogVerb::Delete, node: "n1".into(), index: 0 },
        kv(KvVerb::Get, "missing", "", 0),
    ];
    let (result, _) = state.apply(2, &txn(ops));
    assert!(matches!(result, CommandResult::Txn(Err(_))));
    let mut after = state.clone();
    after.last_index = before.last_index;
    assert_eq!(after, before);

    let ops = vec![TxnOp::Check {
        verb: CatalogVerb::DeleteCas,
        node: "n1".into(),
        check_id: "service:web-1".into(),
        index: 1,
    }];
    assert!(matches!(state.apply(3, &txn(ops)).0, CommandResult::Txn(Ok(_))));
    assert!(state.check("n1", "service:web-1").is_none());
}
