//! A small in-memory Kubernetes API server for tests of the running operator: the real REST and
//! watch protocol (list with resourceVersion, watch from a resourceVersion, get, create,
//! replace, merge/JSON/server-side-apply patches, the status subresource, finalizers and
//! deletion timestamps) for the kinds census uses. Each `listen()` opens another port on the
//! same state and logs its requests apart, so a test can tell which server talked to it.
//!
//! What a real API server cannot show runs here: which census server made each request (a
//! follower must make none) and the operator's throughput without an API server's own cost.
//! Everything else is tested against a real kube-apiserver (`crate::kube_real`).

mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

pub use store::{ApiError, KINDS, Kind, Store, WatchEvent, kind_of};

/// One request as a listener saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub listener: usize,
    pub method: String,
    pub path: String,
    pub watch: bool,
}

#[derive(Clone)]
pub struct FakeKube {
    store: Arc<Mutex<Store>>,
    requests: Arc<Mutex<Vec<Request>>>,
    next_listener: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone)]
struct Listener {
    kube: FakeKube,
    id: usize,
}

/// Where a request points: `/api/v1/...` or `/apis/GROUP/VERSION/...`.
#[derive(Debug)]
struct Target {
    kind: Kind,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

impl Target {
    /// The namespace of a namespaced request ("" for cluster-wide paths).
    fn ns(&self) -> String {
        self.namespace.clone().unwrap_or_default()
    }
}

fn parse_target(path: &str) -> Result<Target, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api_version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => ((*v).to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return Err(store::not_found(KINDS[0], path)),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_string()), rest),
        rest => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_string()), None),
        [plural, name, sub] => (*plural, Some((*name).to_string()), Some(*sub)),
        _ => return Err(store::bad_request(format!("unsupported path {path}"))),
    };
    let kind = kind_of(&api_version, plural).ok_or_else(|| {
        store::bad_request(format!("the server could not find the requested resource {path}"))
    })?;
    if sub.is_some_and(|s| s != "status") {
        return Err(store::bad_request(format!("unsupported subresource in {path}")));
    }
    Ok(Target { kind, namespace, name, status: sub == Some("status") })
}

fn status_response(e: &ApiError) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": e.message, "reason": e.reason, "code": e.code,
    });
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

fn label_selector_matches(selector: Option<&String>, obj: &Value) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_empty()) else { return true };
    sel.split(',').all(|pair| match pair.split_once('=') {
        Some((k, v)) => obj["metadata"]["labels"][k.trim_end_matches('=')].as_str() == Some(v),
        None => obj["metadata"]["labels"].get(pair).is_some(),
    })
}

impl FakeKube {
    pub fn new() -> FakeKube {
        FakeKube { store: Arc::default(), requests: Arc::default(), next_listener: Arc::default() }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens another port on this API server; answers its base URL.
    pub async fn listen(&self) -> String {
        let id = self.next_listener.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake API server");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let app = axum::Router::new().fallback(handle).with_state(Listener { kube: self.clone(), id });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    /// A kubeconfig for `server` (one of `listen()`'s URLs), written into `dir`.
    pub fn kubeconfig(server: &str, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\n"
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Creates the object, or replaces its spec/data/labels keeping what the server owns, as
    /// `kubectl apply` does.
    pub fn apply(&self, obj: Value) -> Value {
        let kind = kind_of(obj["apiVersion"].as_str().unwrap_or(""), &plural_of(&obj)).expect("known kind");
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
        let name = obj["metadata"]["name"].as_str().expect("name").to_string();
        let mut store = self.store();
        match store.get(kind, &ns, &name) {
            None => store.create(kind, &ns, obj).expect("create"),
            Some(mut old) => {
                for (k, v) in obj.as_object().expect("object") {
                    if k == "metadata" {
                        for (mk, mv) in v.as_object().expect("metadata") {
                            old["metadata"][mk] = mv.clone();
                        }
                    } else if k != "status" {
                        old[k] = v.clone();
                    }
                }
                if let Some(o) = old.as_object_mut() {
                    for k in ["spec", "data", "binaryData", "stringData"] {
                        if obj.get(k).is_none() {
                            o.remove(k);
                        }
                    }
                }
                old["metadata"]["resourceVersion"] = Value::Null;
                store.update(kind, &ns, &name, old, false).expect("update")
            }
        }
    }

    pub fn get(&self, api_version: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = kind_of(api_version, plural)?;
        self.store().get(kind, ns, name)
    }

    pub fn list(&self, api_version: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
        kind_of(api_version, plural).map(|k| self.store().list(k, ns)).unwrap_or_default()
    }

    pub fn delete(&self, api_version: &str, plural: &str, ns: &str, name: &str) {
        let kind = kind_of(api_version, plural).expect("known kind");
        self.store().delete(kind, ns, name).expect("delete");
    }

    /// Sets `.status` of an object (a pod's readiness, say) as the kubelet would.
    pub fn set_status(&self, api_version: &str, plural: &str, ns: &str, name: &str, status: Value) {
        let kind = kind_of(api_version, plural).expect("known kind");
        let mut store = self.store();
        let mut obj = store.get(kind, ns, name).expect("object exists");
        obj["status"] = status;
        obj["metadata"]["resourceVersion"] = Value::Null;
        store.update(kind, ns, name, obj, true).expect("status");
    }

    /// Events about the object `name` (reason, note), oldest first.
    pub fn events_about(&self, ns: &str, name: &str) -> Vec<(String, String)> {
        let kind = kind_of("events.k8s.io/v1", "events").expect("events");
        let mut events = self.store().list(kind, Some(ns));
        events.retain(|e| e["regarding"]["name"].as_str() == Some(name));
        events.sort_by_key(|e| e["metadata"]["resourceVersion"].as_str().and_then(|r| r.parse::<u64>().ok()));
        events
            .iter()
            .map(|e| {
                (e["reason"].as_str().unwrap_or("").to_string(), e["note"].as_str().unwrap_or("").to_string())
            })
            .collect()
    }
}

impl Default for FakeKube {
    fn default() -> FakeKube {
        FakeKube::new()
    }
}

fn plural_of(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or("");
    KINDS.iter().find(|k| k.kind == kind).map(|k| k.plural.to_string()).unwrap_or_default()
}

async fn handle(
    State(l): State<Listener>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if let Ok(mut r) = l.kube.requests.lock() {
        r.push(Request { listener: l.id, method: method.to_string(), path: uri.path().to_string(), watch });
    }
    let target = match parse_target(uri.path()) {
        Ok(t) => t,
        Err(e) => return status_response(&e),
    };
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let result = match (&method, &target.name) {
        (&Method::GET, None) if watch => return watch_response(&l.kube, &target, &query),
        (&Method::GET, None) => Ok(list_response(&l.kube, &target, &query)),
        (&Method::GET, Some(name)) => {
            let ns = target.ns();
            l.kube.store().get(target.kind, &ns, name).ok_or_else(|| store::not_found(target.kind, name))
        }
        (&Method::POST, None) => parse_body(&body).and_then(|obj| {
            let ns = target.ns();
            l.kube.store().create(target.kind, &ns, obj)
        }),
        (&Method::PUT, Some(name)) => parse_body(&body).and_then(|obj| {
            let ns = target.ns();
            l.kube.store().update(target.kind, &ns, name, obj, target.status)
        }),
        (&Method::PATCH, Some(name)) => patch(&l.kube, &target, name, &content_type, &body),
        (&Method::DELETE, Some(name)) => {
            let ns = target.ns();
            l.kube.store().delete(target.kind, &ns, name)
        }
        _ => Err(ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!("{method} {}", uri.path()),
        }),
    };
    match result {
        Ok(v) => {
            let code = if method == Method::POST { StatusCode::CREATED } else { StatusCode::OK };
            (code, axum::Json(v)).into_response()
        }
        Err(e) => status_response(&e),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| store::bad_request(format!("malformed body: {e}")))
}

fn patch(
    kube: &FakeKube,
    target: &Target,
    name: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let ns = target.ns();
    let mut store = kube.store();
    let mut obj = store.get(target.kind, &ns, name).ok_or_else(|| store::not_found(target.kind, name))?;
    let patch = parse_body(body)?;
    if content_type.starts_with("application/json-patch+json") {
        let ops: json_patch::Patch =
            serde_json::from_value(patch).map_err(|e| store::bad_request(e.to_string()))?;
        for op in &ops.0 {
            // As the API server does: `test` of a missing member against null passes.
            if let json_patch::PatchOperation::Test(t) = op
                && t.value.is_null()
                && obj.pointer(t.path.as_str()).is_none()
            {
                continue;
            }
            json_patch::patch(&mut obj, std::slice::from_ref(op))
                .map_err(|e| store::invalid(format!("the JSON patch failed: {e}")))?;
        }
    } else if content_type.starts_with("application/apply-patch") {
        // Server-side apply with one manager per field set: what it applies replaces its fields.
        if target.status {
            obj["status"] = patch.get("status").cloned().unwrap_or(Value::Null);
        } else {
            json_patch::merge(&mut obj, &patch);
        }
    } else if content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json")
    {
        json_patch::merge(&mut obj, &patch);
    } else {
        return Err(ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: content_type.to_string(),
        });
    }
    obj["metadata"]["resourceVersion"] = Value::Null;
    store.update(target.kind, &ns, name, obj, target.status)
}

fn list_response(kube: &FakeKube, target: &Target, query: &HashMap<String, String>) -> Value {
    let store = kube.store();
    let mut items = store.list(target.kind, target.namespace.as_deref());
    items.retain(|o| label_selector_matches(query.get("labelSelector"), o));
    json!({
        "apiVersion": target.kind.api_version,
        "kind": format!("{}List", target.kind.kind),
        "metadata": {"resourceVersion": store.resource_version().to_string()},
        "items": items,
    })
}

fn watch_response(kube: &FakeKube, target: &Target, query: &HashMap<String, String>) -> Response {
    let from: u64 = query.get("resourceVersion").and_then(|r| r.parse().ok()).unwrap_or(0);
    let timeout = query.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(290u64);
    let selector = query.get("labelSelector").cloned();
    let (kind, ns) = (target.kind, target.namespace.clone());
    // Subscribe before reading the history, so nothing falls between the two.
    let (backlog, rx, last) = {
        let store = kube.store();
        let rx = store.events_tx.subscribe();
        let last = if from == 0 { store.resource_version() } else { from };
        let backlog: Vec<WatchEvent> = if from == 0 {
            store
                .list(kind, ns.as_deref())
                .into_iter()
                .map(|object| WatchEvent {
                    rv: 0,
                    plural: kind.plural,
                    namespace: String::new(),
                    type_: "ADDED",
                    object,
                })
                .collect()
        } else {
            store.events_since(kind, ns.as_deref(), from)
        };
        let last = backlog.iter().map(|e| e.rv).max().unwrap_or(0).max(last);
        (backlog, rx, last)
    };
    let live = futures::stream::unfold((rx, last), move |(mut rx, last)| async move {
        loop {
            match rx.recv().await {
                Ok(ev) if ev.rv > last => return Some((ev.clone(), (rx, ev.rv))),
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .filter(move |ev| {
        let keep = ev.plural == kind.plural && ns.as_deref().is_none_or(|n| n == ev.namespace);
        futures::future::ready(keep)
    });
    let lines = futures::stream::iter(backlog)
        .chain(live)
        .filter(move |ev| futures::future::ready(label_selector_matches(selector.as_ref(), &ev.object)))
        .map(|ev| {
            let mut line =
                serde_json::to_vec(&json!({"type": ev.type_, "object": ev.object})).unwrap_or_default();
            line.push(b'\n');
            Ok::<_, std::convert::Infallible>(Bytes::from(line))
        })
        .take_until(tokio::time::sleep(Duration::from_secs(timeout)));
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(lines))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
