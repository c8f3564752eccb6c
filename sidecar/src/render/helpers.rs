//! Handlebars helpers that mirror consul-template's functions. Catalog helpers read the data the
//! watchers fetched; a helper whose data has not arrived yet records the dependency as missing and
//! renders as empty, so one render pass discovers everything a template reads.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use serde_json::{Value, json};

use super::deps::{Dependency, parse_service};

/// Catalog data by dependency, and what the current render pass used and lacked.
#[derive(Debug, Default)]
pub struct Shared {
    data: Mutex<HashMap<Dependency, Value>>,
    /// Views of the data built once per change (Go templates' values), by dependency.
    views: Mutex<HashMap<Dependency, Arc<dyn Any + Send + Sync>>>,
    pass: Mutex<Pass>,
    /// Refuse to render a service with fewer healthy instances than this (0 = no guard).
    pub min_instances: usize,
}

/// What one render pass touched.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub used: BTreeSet<Dependency>,
    pub missing: BTreeSet<Dependency>,
    /// Of `missing`, those whose data has arrived but holds the output back (a key that does not
    /// exist, an empty `safeLs`).
    pub refused: BTreeSet<Dependency>,
}

impl Shared {
    pub fn new(min_instances: usize) -> Shared {
        Shared { min_instances, ..Default::default() }
    }

    /// Stores fresh data; false when it equals what was there (nothing to re-render).
    pub fn update(&self, dep: &Dependency, value: Value) -> bool {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        if data.get(dep) == Some(&value) {
            return false;
        }
        data.insert(dep.clone(), value);
        self.views.lock().unwrap_or_else(|p| p.into_inner()).remove(dep);
        true
    }

    pub fn forget(&self, dep: &Dependency) {
        self.data.lock().unwrap_or_else(|p| p.into_inner()).remove(dep);
        self.views.lock().unwrap_or_else(|p| p.into_inner()).remove(dep);
    }

    pub fn begin_pass(&self) {
        *self.pass.lock().unwrap_or_else(|p| p.into_inner()) = Pass::default();
    }

    pub fn end_pass(&self) -> Pass {
        std::mem::take(&mut *self.pass.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The data of `dep`, recording its use; `None` (and recorded as missing) before it arrives.
    fn get(&self, dep: Dependency) -> Option<Value> {
        self.with(dep, Value::clone)
    }

    /// Like `get`, but reads the data in place (no copy of a large list before filtering it).
    pub(crate) fn with<R>(&self, dep: Dependency, f: impl FnOnce(&Value) -> R) -> Option<R> {
        let result = self.data.lock().unwrap_or_else(|p| p.into_inner()).get(&dep).map(f);
        self.record(dep, result.is_some());
        result
    }

    /// The view `build` makes of the data of `dep`, built once per change of that data and
    /// shared by every render until the next; recorded like `with`.
    pub(crate) fn view<T: Clone + Send + Sync + 'static>(
        &self,
        dep: Dependency,
        build: impl FnOnce(&Value) -> T,
    ) -> Option<T> {
        let result = {
            let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
            data.get(&dep).map(|value| {
                let mut views = self.views.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(view) = views.get(&dep).and_then(|v| v.downcast_ref::<T>()) {
                    return view.clone();
                }
                let view = build(value);
                views.insert(dep.clone(), Arc::new(view.clone()));
                view
            })
        };
        self.record(dep, result.is_some());
        result
    }

    /// Holds back this pass's output as if `dep` had no data yet (consul-template's `safeLs`
    /// on an empty prefix): nothing is written until its data changes.
    pub(crate) fn refuse(&self, dep: Dependency) {
        let mut pass = self.pass.lock().unwrap_or_else(|p| p.into_inner());
        pass.missing.insert(dep.clone());
        pass.refused.insert(dep.clone());
        pass.used.insert(dep);
    }

    fn record(&self, dep: Dependency, found: bool) {
        let mut pass = self.pass.lock().unwrap_or_else(|p| p.into_inner());
        if !found {
            pass.missing.insert(dep.clone());
        }
        pass.used.insert(dep);
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Service,
    Services,
    Key,
    KeyOrDefault,
    Ls,
    Tree,
    Node,
    Nodes,
    ByTag,
    Env,
    EnvOrDefault,
    ToJson,
}

struct CatalogHelper {
    kind: Kind,
    shared: Arc<Shared>,
}

fn fail(msg: String) -> RenderError {
    RenderErrorReason::Other(msg).into()
}

fn str_param<'a>(h: &'a Helper, i: usize, name: &'static str) -> Result<&'a str, RenderError> {
    h.param(i)
        .and_then(|p| p.value().as_str())
        .ok_or_else(|| fail(format!("{name}: parameter {} must be a string", i + 1)))
}

/// `ls`: the direct children of a prefix (keys without a further `/`), relative to it.
fn children(entries: &Value, prefix: &str, recursive: bool) -> Value {
    let base =
        if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
    let list = entries.as_array().map(Vec::as_slice).unwrap_or_default();
    let out: Vec<Value> = list
        .iter()
        .filter_map(|e| {
            let key = e.get("Key")?.as_str()?.strip_prefix(&base)?;
            if key.is_empty() || key.ends_with('/') || (!recursive && key.contains('/')) {
                return None;
            }
            Some(json!({"Key": key, "Value": e.get("Value").cloned().unwrap_or(Value::Null)}))
        })
        .collect();
    Value::Array(out)
}

/// `byTag`: tag → the items carrying it, in tag order.
fn by_tag(items: &Value) -> Value {
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for item in items.as_array().map(Vec::as_slice).unwrap_or_default() {
        let tags: Vec<&str> = item
            .get("Tags")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |t| t.iter().filter_map(Value::as_str).collect());
        for tag in tags {
            groups.entry(tag.to_string()).or_default().push(item.clone());
        }
    }
    json!(groups)
}

impl CatalogHelper {
    fn value(&self, h: &Helper) -> Result<Value, RenderError> {
        let shared = &self.shared;
        Ok(match self.kind {
            Kind::Service => {
                let query = str_param(h, 0, "service")?;
                let (dep, filter) = parse_service(query).map_err(|e| fail(e.to_string()))?;
                let admitted = |all: &Value| -> Vec<Value> {
                    all.as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .filter(|e| {
                            filter.admits(e.get("Status").and_then(Value::as_str).unwrap_or_default())
                        })
                        .cloned()
                        .collect()
                };
                let Some(list) = shared.with(dep, admitted) else { return Ok(Value::Array(Vec::new())) };
                if list.len() < shared.min_instances {
                    return Err(fail(format!(
                        "service {query:?} has {} instance(s), fewer than the minimum of {}; keeping the last good output",
                        list.len(),
                        shared.min_instances
                    )));
                }
                Value::Array(list)
            }
            Kind::Services => shared.get(Dependency::Services).unwrap_or_else(|| Value::Array(Vec::new())),
            Kind::Key => {
                let key = str_param(h, 0, "key")?;
                let dep = Dependency::Key(key.to_string());
                match shared.get(dep.clone()) {
                    None => Value::String(String::new()),
                    // Waits for the key, as consul-template does (output held back).
                    Some(Value::Null) => {
                        shared.refuse(dep);
                        Value::String(String::new())
                    }
                    Some(v) => v,
                }
            }
            Kind::KeyOrDefault => {
                let key = str_param(h, 0, "keyOrDefault")?;
                let default = str_param(h, 1, "keyOrDefault")?;
                match shared.get(Dependency::Key(key.to_string())) {
                    Some(Value::String(s)) => Value::String(s),
                    _ => Value::String(default.to_string()),
                }
            }
            Kind::Ls | Kind::Tree => {
                let prefix = str_param(h, 0, "ls/tree")?;
                let entries = shared.get(Dependency::Tree(prefix.to_string())).unwrap_or(Value::Null);
                children(&entries, prefix, matches!(self.kind, Kind::Tree))
            }
            Kind::Node => {
                let name = str_param(h, 0, "node")?;
                shared.get(Dependency::Node(name.to_string())).unwrap_or(Value::Null)
            }
            Kind::Nodes => shared.get(Dependency::Nodes).unwrap_or_else(|| Value::Array(Vec::new())),
            Kind::ByTag => by_tag(h.param(0).map(|p| p.value()).unwrap_or(&Value::Null)),
            Kind::Env => Value::String(std::env::var(str_param(h, 0, "env")?).unwrap_or_default()),
            Kind::EnvOrDefault => {
                let name = str_param(h, 0, "envOrDefault")?;
                let default = str_param(h, 1, "envOrDefault")?;
                Value::String(
                    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.into()),
                )
            }
            Kind::ToJson => {
                let value = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
                Value::String(serde_json::to_string(&value).map_err(|e| fail(e.to_string()))?)
            }
        })
    }
}

impl HelperDef for CatalogHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        self.value(h).map(ScopedJson::Derived)
    }
}

/// Registers every helper on `hb`, reading catalog data from `shared`.
pub fn register(hb: &mut Handlebars<'static>, shared: &Arc<Shared>) {
    let helpers = [
        ("service", Kind::Service),
        ("services", Kind::Services),
        ("key", Kind::Key),
        ("keyOrDefault", Kind::KeyOrDefault),
        ("ls", Kind::Ls),
        ("tree", Kind::Tree),
        ("node", Kind::Node),
        ("nodes", Kind::Nodes),
        ("byTag", Kind::ByTag),
        ("env", Kind::Env),
        ("envOrDefault", Kind::EnvOrDefault),
        ("toJSON", Kind::ToJson),
    ];
    for (name, kind) in helpers {
        hb.register_helper(name, Box::new(CatalogHelper { kind, shared: shared.clone() }));
    }
}
