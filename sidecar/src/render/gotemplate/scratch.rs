//! consul-template's scratchpad: `scratch.Set "k" v`, `scratch.Get "k"`, `scratch.Key "k"`,
//! `scratch.SetX` (only if unset), `scratch.MapSet "m" "k" v`, `scratch.MapSetX`,
//! `scratch.MapValues "m"` (values sorted by key). One pad per template, emptied before each render.
//! Template values have no methods, so `scratch.Set` is read at load as a function of that name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gotmpl::{TemplateError, Value, ValueFunc};

use super::value::{Args, fail, list, map, string};

/// The pad of one template.
#[derive(Debug, Default)]
pub struct Scratch {
    values: Mutex<BTreeMap<String, Value>>,
}

impl Scratch {
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type Method = fn(&Scratch, &[Value]) -> Result<Value, TemplateError>;

const METHODS: &[(&str, Method)] = &[
    ("scratch.Key", |s, v| {
        let args = Args::new("scratch.Key", v, 1, 1)?;
        Ok(Value::Bool(s.lock().contains_key(args.str(0)?)))
    }),
    ("scratch.Get", |s, v| {
        let args = Args::new("scratch.Get", v, 1, 1)?;
        Ok(s.lock().get(args.str(0)?).cloned().unwrap_or(Value::Nil))
    }),
    ("scratch.Set", |s, v| set(s, v, "scratch.Set", true)),
    ("scratch.SetX", |s, v| set(s, v, "scratch.SetX", false)),
    ("scratch.MapSet", |s, v| map_set(s, v, "scratch.MapSet", true)),
    ("scratch.MapSetX", |s, v| map_set(s, v, "scratch.MapSetX", false)),
    ("scratch.MapValues", |s, v| {
        let args = Args::new("scratch.MapValues", v, 1, 1)?;
        match s.lock().get(args.str(0)?) {
            None => Ok(list(Vec::new())),
            Some(Value::Map(entries)) => Ok(list(entries.values().cloned().collect())),
            Some(_) => Err(fail(format!("scratch.MapValues: {:?} is not a map", args.str(0)?))),
        }
    }),
];

/// `Set`/`SetX`: prints nothing.
fn set(
    scratch: &Scratch,
    values: &[Value],
    name: &'static str,
    overwrite: bool,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 2, 2)?;
    let mut pad = scratch.lock();
    let key = args.str(0)?;
    if overwrite || !pad.contains_key(key) {
        pad.insert(key.to_string(), args.value(1).clone());
    }
    Ok(string(""))
}

fn map_set(
    scratch: &Scratch,
    values: &[Value],
    name: &'static str,
    overwrite: bool,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 3, 3)?;
    let (key, field) = (args.str(0)?, args.str(1)?);
    let mut pad = scratch.lock();
    let mut entries: BTreeMap<Arc<str>, Value> = match pad.get(key) {
        None => BTreeMap::new(),
        Some(Value::Map(entries)) => (**entries).clone(),
        Some(_) => return Err(fail(format!("{name}: {key:?} is not a map"))),
    };
    if overwrite || !entries.contains_key(field) {
        entries.insert(field.into(), args.value(2).clone());
    }
    pad.insert(key.to_string(), map(entries));
    Ok(string(""))
}

/// The pad's functions, bound to `scratch`.
pub fn functions(scratch: &Arc<Scratch>) -> Vec<(String, ValueFunc)> {
    METHODS
        .iter()
        .map(|(name, method)| {
            let (scratch, method) = (scratch.clone(), *method);
            let f: ValueFunc = Arc::new(move |args: &[Value]| method(&scratch, args));
            (name.to_string(), f)
        })
        .collect()
}
