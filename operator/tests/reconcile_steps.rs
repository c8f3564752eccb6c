//! Each reconcile step against a scripted API server (tower-test) and an in-memory catalog: the
//! requests it makes, in order, and what it leaves in the catalog.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use census_operator::crd::{KVEntry, KVEntrySpec, KeyRef, Service, ServiceSpec, ValueFrom};
use census_operator::ownership::key_flags;
use census_operator::port::Instance;
use census_operator::{kv_entry, service};
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use kube::api::ObjectMeta;
use serde_json::{Value, json};
use support::{MemoryCatalog, context, context_with};

const SERVICES: &str = "/apis/census.dev/v1alpha1/namespaces/default/services";
const KVENTRIES: &str = "/apis/census.dev/v1alpha1/namespaces/default/kventries";

fn meta(name: &str, finalizer: Option<&str>, deleting: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        generation: Some(3),
        resource_version: Some("10".into()),
        finalizers: finalizer.map(|f| vec![f.to_string()]),
        deletion_timestamp: deleting
            .then(|| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())),
        ..Default::default()
    }
}

fn web_service(finalizer: bool, deleting: bool) -> Service {
    let mut svc = Service::new(
        "web",
        ServiceSpec {
            tags: vec!["v1".into()],
            port: Some(8080),
            selector: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
    );
    svc.metadata = meta("web", finalizer.then_some(service::FINALIZER), deleting);
    svc
}

fn pod(name: &str, ip: &str, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(ip.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn as_json<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).expect("json")
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_new_service_first_gets_the_finalizer_and_nothing_else() {
    let catalog = Arc::new(MemoryCatalog::default());
    let (ctx, mut api) = context(catalog.clone(), vec![pod("web-1", "10.0.0.1", true)]);
    let svc = web_service(false, false);
    let answer = as_json(&web_service(true, false));
    let task = tokio::spawn(service::reconcile(Arc::new(svc), ctx));
    let patch = api.expect("PATCH", &format!("{SERVICES}/web"), answer).await;
    assert_eq!(patch.content_type, "application/json-patch+json");
    assert_eq!(patch.body[1]["op"], "add");
    assert_eq!(patch.body[1]["value"], json!(["census.dev/catalog"]));
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert!(catalog.ids().is_empty(), "nothing is written before the finalizer is in place");
}

#[tokio::test]
async fn a_service_registers_its_pods_and_reports_counts_with_server_side_apply() {
    let catalog = Arc::new(MemoryCatalog::default());
    let pods = vec![pod("web-1", "10.0.0.1", true), pod("web-2", "10.0.0.2", false)];
    let (ctx, mut api) = context(catalog.clone(), pods);
    let task = tokio::spawn(service::reconcile(Arc::new(web_service(true, false)), ctx));
    assert_eq!(api.expect_event().await, "Synced");
    let status =
        api.expect("PATCH", &format!("{SERVICES}/web/status"), as_json(&web_service(true, false))).await;
    task.await.expect("join").expect("reconcile");
    api.done().await;

    assert_eq!(status.content_type, "application/apply-patch+yaml");
    assert!(
        status.query.contains("fieldManager=census-operator") && status.query.contains("force=true"),
        "{}",
        status.query
    );
    let s = &status.body["status"];
    assert_eq!((s["instances"].as_u64(), s["passing"].as_u64()), (Some(2), Some(1)));
    assert_eq!(s["observedGeneration"], 3);
    assert_eq!(condition(s, "Ready")["status"], "True");
    assert_eq!(condition(s, "Synced")["status"], "True");
    assert_eq!(catalog.ids(), ["default-web-web-1", "default-web-web-2"]);
}

/// The leader steps down while a reconcile waits for a pod cache that has not listed yet (a
/// term that lasted milliseconds): the reconcile gives up, so the controller's graceful shutdown,
/// which keeps the cache's writer until every reconcile returns, can finish and the next term
/// start. Before, the reconcile waited forever and the operator never reconciled again.
#[tokio::test]
async fn a_reconcile_waiting_for_the_pod_cache_ends_with_the_term() {
    let catalog = Arc::new(MemoryCatalog::default());
    let (service, _handle) =
        tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
    let client = kube::Client::new(service, "default");
    // The writer is kept and never fed: the cache stays unlisted, as when its watch was stopped.
    let (pods, _writer) = kube::runtime::reflector::store::<Pod>();
    let (end, ended) = futures::channel::oneshot::channel::<()>();
    let term_end = futures::FutureExt::shared(futures::FutureExt::boxed(async move {
        let _ = ended.await;
    }));
    let ctx = Arc::new(
        census_operator::context::Context::new(client, catalog.clone(), pods, "census-server-0".into())
            .ending_with(term_end),
    );
    let task = tokio::spawn(service::reconcile(Arc::new(web_service(true, false)), ctx));
    tokio::task::yield_now().await;
    assert!(!task.is_finished(), "the reconcile waits for the pod cache while the term lasts");
    end.send(()).expect("the reconcile is waiting");
    let result = tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("the reconcile returned once the term ended")
        .expect("join");
    assert!(result.is_err(), "the reconcile reports that it did nothing");
    assert!(catalog.ids().is_empty(), "nothing was registered from an unlisted cache");
}

#[tokio::test]
async fn an_invalid_service_gets_a_reason_and_writes_nothing() {
    let catalog = Arc::new(MemoryCatalog::default());
    let (ctx, mut api) = context(catalog.clone(), vec![pod("web-1", "10.0.0.1", true)]);
    let mut svc = web_service(true, false);
    svc.spec.port = None;
    let task = tokio::spawn(service::reconcile(Arc::new(svc.clone()), ctx));
    assert_eq!(api.expect_event().await, "MissingPort");
    let status = api.expect("PATCH", &format!("{SERVICES}/web/status"), as_json(&svc)).await;
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert_eq!(condition(&status.body["status"], "Synced")["reason"], "MissingPort");
    assert_eq!(condition(&status.body["status"], "Ready")["status"], "False");
    assert!(catalog.ids().is_empty());
}

#[tokio::test]
async fn deleting_a_service_removes_its_instances_only_then_its_finalizer() {
    let catalog = Arc::new(MemoryCatalog::default());
    let mine = |id: &str| Instance {
        id: id.into(),
        service: "web".into(),
        meta: [("census-owner".to_string(), "default/web".to_string())].into(),
        ..Default::default()
    };
    catalog.seed_instance(mine("default-web-web-1"));
    catalog.seed_instance(Instance {
        id: "default-other-x".into(),
        service: "other".into(),
        meta: [("census-owner".to_string(), "default/other".to_string())].into(),
        ..Default::default()
    });
    catalog.seed_instance(Instance {
        id: "manual".into(),
        service: "web".into(),
        meta: BTreeMap::new(),
        ..Default::default()
    });
    let (ctx, mut api) = context(catalog.clone(), vec![]);
    let task = tokio::spawn(service::reconcile(Arc::new(web_service(true, true)), ctx));
    assert_eq!(api.expect_event().await, "Deregistered");
    let patch = api.expect("PATCH", &format!("{SERVICES}/web"), as_json(&web_service(false, true))).await;
    assert_eq!(patch.body[0]["op"], "test", "the finalizer is removed by index, guarded by a test");
    assert_eq!(patch.body[1]["op"], "remove");
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert_eq!(catalog.ids(), ["default-other-x", "manual"]);
}

fn entry(spec: KVEntrySpec, status: Option<Value>) -> KVEntry {
    let mut e = KVEntry::new("config", spec);
    e.metadata = meta("config", Some(kv_entry::FINALIZER), false);
    e.status = status.map(|s| serde_json::from_value(s).expect("status"));
    e
}

fn from_config_map() -> KVEntrySpec {
    KVEntrySpec {
        key: "app/config".into(),
        value_from: Some(ValueFrom {
            config_map_key_ref: Some(KeyRef { name: "app".into(), key: "config.json".into() }),
            secret_key_ref: None,
        }),
        flags: 5,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_kventry_takes_its_value_from_a_config_map() {
    let catalog = Arc::new(MemoryCatalog::default());
    let (ctx, mut api) = context(catalog.clone(), vec![]);
    let e = entry(from_config_map(), None);
    let task = tokio::spawn(kv_entry::reconcile(Arc::new(e.clone()), ctx));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default"}, "data": {"config.json": "{\"a\":1}"}});
    api.expect("GET", "/api/v1/namespaces/default/configmaps/app", cm).await;
    assert_eq!(api.expect_event().await, "Synced");
    let status = api.expect("PATCH", &format!("{KVENTRIES}/config/status"), as_json(&e)).await;
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert_eq!(catalog.value("app/config"), Some(("{\"a\":1}".to_string(), key_flags("default/config", 5))));
    assert_eq!(status.body["status"]["key"], "app/config");
    assert!(status.body["status"]["modifyIndex"].as_u64().is_some());
}

#[tokio::test]
async fn a_missing_config_map_is_a_condition_and_writes_nothing() {
    let catalog = Arc::new(MemoryCatalog::default());
    let (ctx, mut api) = context(catalog.clone(), vec![]);
    let e = entry(from_config_map(), None);
    let task = tokio::spawn(kv_entry::reconcile(Arc::new(e.clone()), ctx));
    api.expect_not_found("/api/v1/namespaces/default/configmaps/app").await;
    assert_eq!(api.expect_event().await, "ValueSourceNotFound");
    let status = api.expect("PATCH", &format!("{KVENTRIES}/config/status"), as_json(&e)).await;
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert_eq!(condition(&status.body["status"], "Ready")["reason"], "ValueSourceNotFound");
    assert_eq!(catalog.value("app/config"), None);
}

#[tokio::test]
async fn a_kventry_from_a_secret_decodes_it() {
    let catalog = Arc::new(MemoryCatalog::default());
    let (ctx, mut api) = context(catalog.clone(), vec![]);
    let spec = KVEntrySpec {
        key: "db/password".into(),
        value_from: Some(ValueFrom {
            config_map_key_ref: None,
            secret_key_ref: Some(KeyRef { name: "db".into(), key: "password".into() }),
        }),
        ..Default::default()
    };
    let e = entry(spec, None);
    let task = tokio::spawn(kv_entry::reconcile(Arc::new(e.clone()), ctx));
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"}, "data": {"password": "aHVudGVyMg=="}});
    api.expect("GET", "/api/v1/namespaces/default/secrets/db", secret).await;
    api.expect_event().await;
    api.expect("PATCH", &format!("{KVENTRIES}/config/status"), as_json(&e)).await;
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert_eq!(catalog.value("db/password").map(|v| v.0).as_deref(), Some("hunter2"));
}

#[tokio::test]
async fn without_secret_access_a_secret_source_is_a_condition_not_a_forbidden_read() {
    let catalog = Arc::new(MemoryCatalog::default());
    let (ctx, mut api) = context_with(catalog.clone(), vec![], false);
    let spec = KVEntrySpec {
        key: "db/password".into(),
        value_from: Some(ValueFrom {
            config_map_key_ref: None,
            secret_key_ref: Some(KeyRef { name: "db".into(), key: "password".into() }),
        }),
        ..Default::default()
    };
    let e = entry(spec, None);
    let task = tokio::spawn(kv_entry::reconcile(Arc::new(e.clone()), ctx));
    assert_eq!(api.expect_event().await, "SecretsNotReadable");
    let status = api.expect("PATCH", &format!("{KVENTRIES}/config/status"), as_json(&e)).await;
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert_eq!(condition(&status.body["status"], "Ready")["reason"], "SecretsNotReadable");
    assert_eq!(catalog.value("db/password"), None);
}

#[tokio::test]
async fn a_key_someone_else_wrote_is_not_overwritten() {
    let catalog = Arc::new(MemoryCatalog::default());
    catalog.seed_key("app/config", "theirs", 0);
    let (ctx, mut api) = context(catalog.clone(), vec![]);
    let spec = KVEntrySpec { key: "app/config".into(), value: Some("ours".into()), ..Default::default() };
    let e = entry(spec, None);
    let task = tokio::spawn(kv_entry::reconcile(Arc::new(e.clone()), ctx));
    assert_eq!(api.expect_event().await, "KeyNotOwned");
    let status = api.expect("PATCH", &format!("{KVENTRIES}/config/status"), as_json(&e)).await;
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert_eq!(condition(&status.body["status"], "Synced")["reason"], "KeyNotOwned");
    assert_eq!(catalog.value("app/config"), Some(("theirs".to_string(), 0)));
}

#[tokio::test]
async fn a_key_this_entry_wrote_and_someone_overwrote_is_restored_with_an_event() {
    let catalog = Arc::new(MemoryCatalog::default());
    // Overwritten by `consul kv put`: census's mark is gone from the flags.
    catalog.seed_key("app/config", "tampered", 0);
    let (ctx, mut api) = context(catalog.clone(), vec![]);
    let spec = KVEntrySpec { key: "app/config".into(), value: Some("ours".into()), ..Default::default() };
    let status = json!({"key": "app/config", "modifyIndex": 1, "conditions": []});
    let e = entry(spec, Some(status));
    let task = tokio::spawn(kv_entry::reconcile(Arc::new(e.clone()), ctx));
    assert_eq!(api.expect_event().await, "DriftRepaired");
    api.expect("PATCH", &format!("{KVENTRIES}/config/status"), as_json(&e)).await;
    task.await.expect("join").expect("reconcile");
    api.done().await;
    assert_eq!(catalog.value("app/config"), Some(("ours".to_string(), key_flags("default/config", 0))));
}

#[tokio::test]
async fn an_unchanged_kventry_writes_nothing_at_all() {
    let catalog = Arc::new(MemoryCatalog::default());
    catalog.seed_key("app/config", "ours", key_flags("default/config", 0));
    let (ctx, mut api) = context(catalog.clone(), vec![]);
    let spec = KVEntrySpec { key: "app/config".into(), value: Some("ours".into()), ..Default::default() };
    let mut e = entry(spec, None);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    let synced = |t: &str| k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        type_: t.into(),
        status: "True".into(),
        reason: "Synced".into(),
        message: "key app/config written".into(),
        observed_generation: Some(3),
        last_transition_time: now.clone(),
    };
    e.status = Some(census_operator::crd::KVEntryStatus {
        conditions: vec![synced("Ready"), synced("Synced")],
        observed_generation: Some(3),
        key: Some("app/config".into()),
        modify_index: Some(1),
    });
    let task = tokio::spawn(kv_entry::reconcile(Arc::new(e), ctx));
    if let Some((seen, _)) = api.try_next().await {
        panic!("an unchanged entry made a request: {seen:?}");
    }
    task.await.expect("join").expect("reconcile");
    assert_eq!(catalog.value("app/config"), Some(("ours".to_string(), key_flags("default/config", 0))));
}
