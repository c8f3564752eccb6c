//! The fake API server's state: objects by (resource, namespace, name), one resourceVersion
//! counter, and the history of watch events so a watch can resume from any resourceVersion.
//! It follows the API server's rules that the operator depends on: generation moves with the
//! spec only, the main resource ignores status and `/status` ignores everything else, a no-op
//! write changes nothing, deletion waits for finalizers.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A kind this server knows: its resource (plural) and the apiVersion/kind of its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// Writes to the main resource ignore `.status` (custom resources with a status subresource).
    pub has_status: bool,
}

pub const KINDS: [Kind; 7] = [
    Kind { api_version: "census.dev/v1alpha1", kind: "Service", plural: "services", has_status: true },
    Kind { api_version: "census.dev/v1alpha1", kind: "KVEntry", plural: "kventries", has_status: true },
    Kind { api_version: "v1", kind: "Pod", plural: "pods", has_status: true },
    Kind { api_version: "v1", kind: "ConfigMap", plural: "configmaps", has_status: false },
    Kind { api_version: "v1", kind: "Secret", plural: "secrets", has_status: false },
    Kind { api_version: "events.k8s.io/v1", kind: "Event", plural: "events", has_status: false },
    Kind { api_version: "v1", kind: "Namespace", plural: "namespaces", has_status: false },
];

pub fn kind_of(api_version: &str, plural: &str) -> Option<Kind> {
    KINDS.iter().copied().find(|k| k.api_version == api_version && k.plural == plural)
}

#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub rv: u64,
    pub plural: &'static str,
    pub namespace: String,
    pub type_: &'static str,
    pub object: Value,
}

/// Why a request failed, as the API server reports it (a `Status` object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

fn err(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { code, reason, message: message.into() }
}

type Key = (&'static str, String, String);

pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: Vec<WatchEvent>,
    pub events_tx: broadcast::Sender<WatchEvent>,
    uid: u64,
}

impl Default for Store {
    fn default() -> Store {
        Store {
            objects: BTreeMap::new(),
            rv: 0,
            history: Vec::new(),
            events_tx: broadcast::channel(65536).0,
            uid: 0,
        }
    }
}

fn without_meta_and_status(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Store {
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        self.objects.get(&(kind.plural, ns.to_string(), name.to_string())).cloned()
    }

    /// Every object of `kind`, in `ns` or in all namespaces.
    pub fn list(&self, kind: Kind, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((plural, n, _), _)| *plural == kind.plural && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// History after `rv` for `kind` in `ns` (all when `None`).
    pub fn events_since(&self, kind: Kind, ns: Option<&str>, rv: u64) -> Vec<WatchEvent> {
        let start = self.history.partition_point(|e| e.rv <= rv);
        self.history[start..]
            .iter()
            .filter(|e| e.plural == kind.plural && ns.is_none_or(|ns| ns == e.namespace))
            .cloned()
            .collect()
    }

    fn record(&mut self, kind: Kind, ns: &str, type_: &'static str, object: Value) {
        let ev = WatchEvent { rv: self.rv, plural: kind.plural, namespace: ns.to_string(), type_, object };
        self.history.push(ev.clone());
        let _ = self.events_tx.send(ev);
    }

    fn stamp(&mut self, obj: &mut Value) {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
    }

    pub fn create(&mut self, kind: Kind, ns: &str, mut obj: Value) -> Result<Value, ApiError> {
        let name = obj["metadata"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err(422, "Invalid", "metadata.name: Required value"))?
            .to_string();
        let key = (kind.plural, ns.to_string(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(err(409, "AlreadyExists", format!("{} \"{name}\" already exists", kind.plural)));
        }
        self.uid += 1;
        obj["apiVersion"] = json!(kind.api_version);
        obj["kind"] = json!(kind.kind);
        obj["metadata"]["namespace"] = json!(ns);
        obj["metadata"]["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", self.uid));
        obj["metadata"]["creationTimestamp"] = json!(now());
        obj["metadata"]["generation"] = json!(1);
        if kind.has_status && kind.api_version.starts_with("census.dev") {
            // A custom resource is created without status; /status sets it.
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        self.stamp(&mut obj);
        self.objects.insert(key, obj.clone());
        self.record(kind, ns, "ADDED", obj.clone());
        Ok(obj)
    }

    /// Stores `new` as the object's next state, as a write to the main resource (`status`
    /// false) or to `/status`; a write that changes nothing changes nothing.
    pub fn update(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        mut new: Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        let key = (kind.plural, ns.to_string(), name.to_string());
        let old = self.objects.get(&key).cloned().ok_or_else(|| not_found(kind, name))?;
        if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(err(
                409,
                "Conflict",
                format!(
                    "the object {name} has been modified; please apply your changes to the latest version and try again"
                ),
            ));
        }
        if status {
            let mut merged = old.clone();
            merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            new = merged;
        } else {
            if kind.has_status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            // Fields the server owns.
            for field in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace", "name"]
            {
                match old["metadata"].get(field) {
                    Some(v) => new["metadata"][field] = v.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove(field);
                        }
                    }
                }
            }
            new["apiVersion"] = json!(kind.api_version);
            new["kind"] = json!(kind.kind);
            if without_meta_and_status(&new) != without_meta_and_status(&old) {
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                new["metadata"]["generation"] = json!(generation);
            }
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if let Some(m) = new["metadata"].as_object_mut() {
            m.retain(|_, v| !v.is_null());
            if m.get("finalizers").is_some_and(|f| f.as_array().is_some_and(Vec::is_empty)) {
                m.remove("finalizers");
            }
        }
        if new == old {
            return Ok(old);
        }
        let finalizers_gone = new["metadata"].get("finalizers").is_none();
        if finalizers_gone && new["metadata"].get("deletionTimestamp").is_some() {
            self.stamp(&mut new);
            self.objects.remove(&key);
            self.record(kind, ns, "DELETED", new.clone());
            return Ok(new);
        }
        self.stamp(&mut new);
        self.objects.insert(key, new.clone());
        self.record(kind, ns, "MODIFIED", new.clone());
        Ok(new)
    }

    /// Deletes at once, or marks for deletion while finalizers remain.
    pub fn delete(&mut self, kind: Kind, ns: &str, name: &str) -> Result<Value, ApiError> {
        let key = (kind.plural, ns.to_string(), name.to_string());
        let mut obj = self.objects.get(&key).cloned().ok_or_else(|| not_found(kind, name))?;
        let has_finalizers = obj["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if obj["metadata"].get("deletionTimestamp").is_none() {
                obj["metadata"]["deletionTimestamp"] = json!(now());
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                self.stamp(&mut obj);
                self.objects.insert(key, obj.clone());
                self.record(kind, ns, "MODIFIED", obj.clone());
            }
            return Ok(obj);
        }
        self.stamp(&mut obj);
        self.objects.remove(&key);
        self.record(kind, ns, "DELETED", obj.clone());
        Ok(obj)
    }
}

pub fn not_found(kind: Kind, name: &str) -> ApiError {
    err(404, "NotFound", format!("{} \"{name}\" not found", kind.plural))
}

pub fn bad_request(message: impl Into<String>) -> ApiError {
    err(400, "BadRequest", message)
}

pub fn invalid(message: impl Into<String>) -> ApiError {
    err(422, "Invalid", message)
}
