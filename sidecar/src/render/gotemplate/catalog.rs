//! consul-template's API functions: each names the catalog query it reads, so one render pass
//! finds everything a template depends on (the watchers then block on each). Before a query's
//! first answer a function returns its empty value, as consul-template's first pass does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use gotmpl::{TemplateError, Value};

use super::value::{Args, fail, field, from_json, list, map, string};
use crate::render::deps::{Dependency, parse_service};
use crate::render::helpers::Shared;

pub type CatalogFn = fn(&Shared, &[Value]) -> Result<Value, TemplateError>;

/// consul-template's API functions by name.
pub const FUNCTIONS: &[(&str, CatalogFn)] = &[
    ("service", service),
    ("connect", connect),
    ("services", services),
    ("key", key),
    ("keyExists", key_exists),
    ("keyOrDefault", key_or_default),
    ("ls", ls),
    ("safeLs", safe_ls),
    ("tree", tree),
    ("safeTree", safe_tree),
    ("node", node),
    ("nodes", nodes),
    ("datacenters", datacenters),
    ("file", file),
];

/// The converted data of `dep`, shared by every call until it changes.
fn data(shared: &Shared, dep: Dependency) -> Option<Value> {
    shared.view(dep, from_json)
}

/// `service "[tag.]name[@dc][|filter]"` (more arguments are joined with `|`, as consul-template
/// does): healthy instances by default, `|any` every one, `|passing,warning` by status.
fn service(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    instances(shared, values, "service")
}

/// `connect`: as `service`, for the Connect-capable instances of the service.
fn connect(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    instances(shared, values, "connect")
}

fn instances(shared: &Shared, values: &[Value], name: &'static str) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, usize::MAX)?;
    let parts: Vec<&str> = (0..args.count()).map(|i| args.str(i)).collect::<Result<_, _>>()?;
    let query = parts.join("|");
    if query.is_empty() {
        return Ok(list(Vec::new()));
    }
    let (dep, filter) = parse_service(&query).map_err(|e| fail(e.to_string()))?;
    let dep = match (name, dep) {
        ("connect", Dependency::Service { name, tag, dc }) => Dependency::Connect { name, tag, dc },
        (_, dep) => dep,
    };
    let Some(Value::List(all)) = data(shared, dep) else { return Ok(list(Vec::new())) };
    let admitted: Vec<Value> = all
        .iter()
        .filter(|e| filter.admits(field(e, "Status").and_then(Value::as_str).unwrap_or_default()))
        .cloned()
        .collect();
    if admitted.len() < shared.min_instances {
        return Err(fail(format!(
            "{name} {query:?} has {} instance(s), fewer than the minimum of {}; keeping the last good output",
            admitted.len(),
            shared.min_instances
        )));
    }
    Ok(list(admitted))
}

/// `services`: every service name with its tags, by name.
fn services(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("services", values, 0, 1)?;
    if args.count() == 1 && !args.str(0)?.is_empty() {
        return Err(fail("services: a datacenter (\"@dc\") is not supported; census serves one datacenter"));
    }
    Ok(data(shared, Dependency::Services).unwrap_or_else(|| list(Vec::new())))
}

/// `"path"`; `"path@dc"` is refused (census serves one datacenter).
fn kv_path<'a>(args: &Args<'a>) -> Result<&'a str, TemplateError> {
    let path = args.str(0)?;
    if path.contains('@') {
        return Err(fail(format!("{}: {path:?}: a datacenter is not supported", args.name)));
    }
    Ok(path.trim_start_matches('/'))
}

/// `key`: the value; an error while the key does not exist (consul-template waits instead; an
/// error shows on /healthz and keeps the last good file).
fn key(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("key", values, 1, 1)?;
    let path = kv_path(&args)?;
    let dep = Dependency::Key(path.to_string());
    match shared.with(dep.clone(), Clone::clone) {
        Some(serde_json::Value::String(s)) => Ok(string(s)),
        // consul-template's `key` waits for a key that does not exist: this template's output is
        // held back (the others are written) until the key appears.
        Some(_) => {
            shared.refuse(dep);
            Ok(string(""))
        }
        None => Ok(string("")),
    }
}

fn key_exists(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("keyExists", values, 1, 1)?;
    let path = kv_path(&args)?;
    let found = shared.with(Dependency::Key(path.to_string()), serde_json::Value::is_string);
    Ok(Value::Bool(found.unwrap_or(false)))
}

fn key_or_default(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("keyOrDefault", values, 2, 2)?;
    let (path, default) = (kv_path(&args)?, args.str(1)?);
    match shared.with(Dependency::Key(path.to_string()), Clone::clone) {
        Some(serde_json::Value::String(s)) => Ok(string(s)),
        _ => Ok(string(default)),
    }
}

/// The pairs under `prefix` as consul-template's `KeyPair`s (`Key` relative to the prefix,
/// `Path` the full key): direct children only for `ls`, every key for `tree`; folder keys
/// (ending in `/`) never. `safe`: refuse to render while there are none.
fn pairs(
    shared: &Shared,
    values: &[Value],
    name: &'static str,
    recursive: bool,
    safe: bool,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, 1)?;
    let prefix = kv_path(&args)?.to_string();
    let base = if prefix.is_empty() || prefix.ends_with('/') { prefix.clone() } else { format!("{prefix}/") };
    let dep = Dependency::Tree(prefix);
    let Some(Value::List(entries)) = data(shared, dep.clone()) else { return Ok(list(Vec::new())) };
    let selected: Vec<Value> = entries
        .iter()
        .filter_map(|entry| {
            let path = field(entry, "Key")?.as_str()?;
            let key = path.strip_prefix(&base)?;
            if key.is_empty() || key.ends_with('/') || (!recursive && key.contains('/')) {
                return None;
            }
            let mut pair: BTreeMap<Arc<str>, Value> = BTreeMap::new();
            pair.insert("Path".into(), string(path));
            pair.insert("Key".into(), string(key));
            pair.insert("Value".into(), field(entry, "Value").cloned().unwrap_or_else(|| string("")));
            pair.insert("Exists".into(), Value::Bool(true));
            pair.insert("Flags".into(), field(entry, "Flags").cloned().unwrap_or(Value::Int(0)));
            Some(map(pair))
        })
        .collect();
    if safe && selected.is_empty() {
        shared.refuse(dep);
    }
    Ok(list(selected))
}

fn ls(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    pairs(shared, values, "ls", false, false)
}

fn safe_ls(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    pairs(shared, values, "safeLs", false, true)
}

fn tree(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    pairs(shared, values, "tree", true, false)
}

fn safe_tree(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    pairs(shared, values, "safeTree", true, true)
}

/// `node ["name"]`: a node and its services (`.Node`, `.Services`); without a name, the agent's
/// own node. Nil while unknown.
fn node(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("node", values, 0, 1)?;
    let dep = match args.count() {
        0 => Dependency::LocalNode,
        _ => match args.str(0)? {
            "" => Dependency::LocalNode,
            name if name.contains('@') => {
                return Err(fail(format!("node {name:?}: a datacenter is not supported")));
            }
            name => Dependency::Node(name.to_string()),
        },
    };
    Ok(data(shared, dep).unwrap_or(Value::Nil))
}

fn nodes(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("nodes", values, 0, 1)?;
    if args.count() == 1 && !args.str(0)?.is_empty() {
        return Err(fail("nodes: \"@dc\" and \"~near\" are not supported"));
    }
    Ok(data(shared, Dependency::Nodes).unwrap_or_else(|| list(Vec::new())))
}

/// `datacenters [ignoreInaccessible]`: census has one.
fn datacenters(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    Args::new("datacenters", values, 0, 1)?;
    Ok(data(shared, Dependency::Datacenters).unwrap_or_else(|| list(Vec::new())))
}

/// `file "path"`: the file's text, followed as it changes; an error while it cannot be read.
fn file(shared: &Shared, values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("file", values, 1, 1)?;
    let path = args.str(0)?;
    match shared.with(Dependency::File(PathBuf::from(path)), Clone::clone) {
        None => Ok(string("")),
        Some(serde_json::Value::String(text)) => Ok(string(text)),
        Some(_) => Err(fail(format!("file {path:?} cannot be read"))),
    }
}
