//! Sprig's list and dictionary functions (`sprig_list`, `sprig_first`, `sprig_uniq`,
//! `sprig_dict`, `sprig_get`, `sprig_keys`, ...), and `join`/`split` on lists of anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{TemplateError, Value};

use super::{Args, HelperFn, fail, is_empty, list_arg, same, strval};
use crate::render::gotemplate::value::{list, map, string, type_name};

pub const FUNCTIONS: &[(&str, HelperFn)] = &[
    ("list", |v| Ok(list(v.to_vec()))),
    ("tuple", |v| Ok(list(v.to_vec()))),
    ("first", |v| on_list(v, "sprig_first", |l| l.first().cloned().unwrap_or(Value::Nil))),
    ("last", |v| on_list(v, "sprig_last", |l| l.last().cloned().unwrap_or(Value::Nil))),
    ("rest", |v| on_list(v, "sprig_rest", |l| list(l.iter().skip(1).cloned().collect()))),
    ("initial", |v| on_list(v, "sprig_initial", |l| list(l[..l.len().saturating_sub(1)].to_vec()))),
    ("reverse", |v| on_list(v, "sprig_reverse", |l| list(l.iter().rev().cloned().collect()))),
    ("compact", |v| {
        on_list(v, "sprig_compact", |l| list(l.iter().filter(|x| !is_empty(x)).cloned().collect()))
    }),
    ("uniq", |v| {
        on_list(v, "sprig_uniq", |l| {
            let mut kept: Vec<Value> = Vec::new();
            for item in l {
                if !kept.iter().any(|k| same(k, item)) {
                    kept.push(item.clone());
                }
            }
            list(kept)
        })
    }),
    ("sortAlpha", |v| {
        on_list(v, "sprig_sortAlpha", |l| {
            let mut words: Vec<String> = l.iter().map(strval).collect();
            words.sort();
            list(words.into_iter().map(string).collect())
        })
    }),
    ("append", |v| {
        let args = Args::new("sprig_append", v, 2, 2)?;
        let mut items = list_arg(&args, 0)?.to_vec();
        items.push(args.value(1).clone());
        Ok(list(items))
    }),
    ("prepend", |v| {
        let args = Args::new("sprig_prepend", v, 2, 2)?;
        let mut items = vec![args.value(1).clone()];
        items.extend_from_slice(list_arg(&args, 0)?);
        Ok(list(items))
    }),
    ("concat", |v| {
        let args = Args::new("sprig_concat", v, 0, usize::MAX)?;
        let mut items = Vec::new();
        for i in 0..args.count() {
            items.extend_from_slice(list_arg(&args, i)?);
        }
        Ok(list(items))
    }),
    ("has", |v| {
        let args = Args::new("sprig_has", v, 2, 2)?;
        Ok(Value::Bool(list_arg(&args, 1)?.iter().any(|x| same(x, args.value(0)))))
    }),
    ("without", |v| {
        let args = Args::new("sprig_without", v, 1, usize::MAX)?;
        let omit = &args.values[1..];
        Ok(list(list_arg(&args, 0)?.iter().filter(|x| !omit.iter().any(|o| same(o, x))).cloned().collect()))
    }),
    ("join", |v| {
        let args = Args::new("sprig_join", v, 2, 2)?;
        let sep = strval(args.value(0));
        let words: Vec<String> = match args.value(1) {
            Value::List(items) => items.iter().filter(|x| !matches!(x, Value::Nil)).map(strval).collect(),
            other => vec![strval(other)],
        };
        Ok(string(words.join(&sep)))
    }),
    ("splitList", |v| {
        let args = Args::new("sprig_splitList", v, 2, 2)?;
        let (sep, text) = (strval(args.value(0)), strval(args.value(1)));
        Ok(list(text.split(sep.as_str()).map(string).collect()))
    }),
    ("split", |v| {
        let args = Args::new("sprig_split", v, 2, 2)?;
        let (sep, text) = (strval(args.value(0)), strval(args.value(1)));
        Ok(map(text
            .split(sep.as_str())
            .enumerate()
            .map(|(i, p)| (Arc::from(format!("_{i}")), string(p)))
            .collect()))
    }),
    ("dict", |v| {
        let mut entries = BTreeMap::new();
        for pair in v.chunks(2) {
            entries.insert(Arc::from(strval(&pair[0])), pair.get(1).cloned().unwrap_or_else(|| string("")));
        }
        Ok(map(entries))
    }),
    ("get", |v| {
        let args = Args::new("sprig_get", v, 2, 2)?;
        Ok(dict_arg(&args, 0)?.get(strval(args.value(1)).as_str()).cloned().unwrap_or_else(|| string("")))
    }),
    ("hasKey", |v| {
        let args = Args::new("sprig_hasKey", v, 2, 2)?;
        Ok(Value::Bool(dict_arg(&args, 0)?.contains_key(strval(args.value(1)).as_str())))
    }),
    ("keys", |v| {
        let args = Args::new("sprig_keys", v, 1, usize::MAX)?;
        let mut keys = Vec::new();
        for i in 0..args.count() {
            keys.extend(dict_arg(&args, i)?.keys().map(|k| string(&**k)));
        }
        Ok(list(keys))
    }),
    ("values", |v| {
        let args = Args::new("sprig_values", v, 1, 1)?;
        Ok(list(dict_arg(&args, 0)?.values().cloned().collect()))
    }),
    ("pick", |v| select(v, "sprig_pick", true)),
    ("omit", |v| select(v, "sprig_omit", false)),
];

fn on_list(
    values: &[Value],
    name: &'static str,
    f: impl Fn(&[Value]) -> Value,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, 1)?;
    Ok(f(list_arg(&args, 0)?))
}

fn dict_arg<'a>(args: &Args<'a>, i: usize) -> Result<&'a BTreeMap<Arc<str>, Value>, TemplateError> {
    match args.value(i) {
        Value::Map(entries) => Ok(entries),
        other => Err(fail(format!("{}: cannot use {} as a dict", args.name, type_name(other)))),
    }
}

/// `pick DICT KEYS...` keeps the keys, `omit DICT KEYS...` drops them.
fn select(values: &[Value], name: &'static str, keep: bool) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, usize::MAX)?;
    let keys: Vec<String> = args.values[1..].iter().map(strval).collect();
    let entries = dict_arg(&args, 0)?;
    Ok(map(entries
        .iter()
        .filter(|(k, _)| keys.iter().any(|x| x == &***k) == keep)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()))
}

#[cfg(test)]
pub fn dict_of(entries: &[(&str, Value)]) -> Value {
    map(entries.iter().map(|(k, v)| (Arc::from(*k), v.clone())).collect())
}
