//! Shared parts of the reconcile-step tests: an in-memory catalog port and a scripted API
//! server on a tower-test mock (each expected request is checked, then answered).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use census_operator::context::Context;
use census_operator::port::{CatalogPort, Instance, PortError, StoredInstance, StoredKey};
use http::{Request, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::runtime::reflector;
use kube::runtime::watcher;
use serde_json::Value;

/// The catalog as a map, with Raft's single growing index.
#[derive(Default)]
pub struct MemoryCatalog {
    pub instances: Mutex<BTreeMap<String, StoredInstance>>,
    pub keys: Mutex<BTreeMap<String, StoredKey>>,
    index: Mutex<u64>,
}

impl MemoryCatalog {
    fn next(&self) -> u64 {
        let mut i = self.index.lock().expect("index");
        *i += 1;
        *i
    }

    /// An instance written by someone (census or not), passing.
    pub fn seed_instance(&self, instance: Instance) {
        let modify_index = self.next();
        self.instances
            .lock()
            .expect("instances")
            .insert(instance.id.clone(), StoredInstance { instance, passing: true, modify_index });
    }

    pub fn seed_key(&self, key: &str, value: &str, flags: u64) {
        let modify_index = self.next();
        self.keys
            .lock()
            .expect("keys")
            .insert(key.into(), StoredKey { value: value.as_bytes().to_vec(), flags, modify_index });
    }

    pub fn ids(&self) -> Vec<String> {
        self.instances.lock().expect("instances").keys().cloned().collect()
    }

    pub fn value(&self, key: &str) -> Option<(String, u64)> {
        self.keys
            .lock()
            .expect("keys")
            .get(key)
            .map(|k| (String::from_utf8_lossy(&k.value).into_owned(), k.flags))
    }
}

impl CatalogPort for MemoryCatalog {
    fn instances(&self) -> Vec<StoredInstance> {
        self.instances.lock().expect("instances").values().cloned().collect()
    }

    async fn register(&self, instance: Instance) -> Result<u64, PortError> {
        let i = self.next();
        let passing = instance.pod_ready != Some(false);
        self.instances
            .lock()
            .expect("instances")
            .insert(instance.id.clone(), StoredInstance { instance, passing, modify_index: i });
        Ok(i)
    }

    async fn deregister(&self, id: &str) -> Result<(), PortError> {
        self.next();
        self.instances.lock().expect("instances").remove(id);
        Ok(())
    }

    fn key(&self, key: &str) -> Option<StoredKey> {
        self.keys.lock().expect("keys").get(key).cloned()
    }

    async fn put_key(&self, key: &str, value: Vec<u8>, flags: u64) -> Result<u64, PortError> {
        let modify_index = self.next();
        self.keys.lock().expect("keys").insert(key.into(), StoredKey { value, flags, modify_index });
        Ok(modify_index)
    }

    async fn delete_key(&self, key: &str) -> Result<(), PortError> {
        self.next();
        self.keys.lock().expect("keys").remove(key);
        Ok(())
    }

    async fn changed(&self) {
        std::future::pending().await
    }

    fn leading(&self) -> bool {
        true
    }

    async fn leadership_changed(&self, _was_leading: bool) {
        std::future::pending().await
    }
}

/// The API server's side of the mock: take the next request, check it, answer it.
pub struct ApiServer(tower_test::mock::Handle<Request<Body>, Response<Body>>);

/// One request as the test sees it.
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub query: String,
    pub body: Value,
}

impl ApiServer {
    pub async fn next(&mut self) -> (Seen, tower_test::mock::SendResponse<Response<Body>>) {
        self.try_next().await.expect("the reconciler made no further request")
    }

    /// The next request; `None` once the client is gone (the reconcile finished).
    pub async fn try_next(&mut self) -> Option<(Seen, tower_test::mock::SendResponse<Response<Body>>)> {
        let (request, send) = self.0.next_request().await?;
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("").to_string();
        let content_type =
            request.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        Some((Seen { method, path, content_type, query, body }, send))
    }

    /// Expects `method path`, answers `answer` (200), returns what was sent.
    pub async fn expect(&mut self, method: &str, path: &str, answer: Value) -> Seen {
        let (seen, send) = self.next().await;
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            (method, path),
            "unexpected request: {seen:?}"
        );
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                .expect("response"),
        );
        seen
    }

    /// Expects a GET answered 404.
    pub async fn expect_not_found(&mut self, path: &str) {
        let (seen, send) = self.next().await;
        assert_eq!((seen.method.as_str(), seen.path.as_str()), ("GET", path), "unexpected request: {seen:?}");
        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
        send.send_response(
            Response::builder()
                .status(404)
                .body(Body::from(serde_json::to_vec(&status).expect("json")))
                .expect("response"),
        );
    }

    /// Expects an Event to be created; answers what was posted; returns its reason.
    pub async fn expect_event(&mut self) -> String {
        let (seen, send) = self.next().await;
        assert_eq!(seen.method, "POST", "expected an Event: {seen:?}");
        assert!(seen.path.starts_with("/apis/events.k8s.io/v1/namespaces/"), "expected an Event: {seen:?}");
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&seen.body).expect("json")))
                .expect("response"),
        );
        seen.body["reason"].as_str().unwrap_or("").to_string()
    }

    /// No request is left unanswered or unexpected.
    pub async fn done(mut self) {
        tokio::task::yield_now().await;
        assert!(
            futures::FutureExt::now_or_never(self.0.next_request()).flatten().is_none(),
            "the reconciler made an unexpected request"
        );
    }
}

/// A context over `catalog` whose API server is the returned mock, with `pods` in its cache.
pub fn context(catalog: Arc<MemoryCatalog>, pods: Vec<Pod>) -> (Arc<Context<MemoryCatalog>>, ApiServer) {
    context_with(catalog, pods, true)
}

/// As `context`; `read_secrets` false as with the chart's `rbac.readSecrets=false`.
pub fn context_with(
    catalog: Arc<MemoryCatalog>,
    pods: Vec<Pod>,
    read_secrets: bool,
) -> (Arc<Context<MemoryCatalog>>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for pod in pods {
        writer.apply_watcher_event(&watcher::Event::InitApply(pod));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let ctx = Context::new(client, catalog, store, "census-server-0".into());
    let ctx = if read_secrets { ctx } else { ctx.without_secrets() };
    (Arc::new(ctx), ApiServer(handle))
}
