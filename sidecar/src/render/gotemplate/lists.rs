//! consul-template's helper functions on lists and membership, with its argument order (the piped
//! value comes last: `{{ .Tags | join "," }}`, `{{ if .Tags | contains "web" }}`).

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{TemplateError, Value};

use super::text::HelperFn;
use super::value::{Args, fail, list, map, string};

pub const FUNCTIONS: &[(&str, HelperFn)] = &[
    ("contains", contains),
    ("containsAll", |v| contains_some(v, "containsAll", true, false)),
    ("containsAny", |v| contains_some(v, "containsAny", false, false)),
    ("containsNone", |v| contains_some(v, "containsNone", true, true)),
    ("containsNotAll", |v| contains_some(v, "containsNotAll", false, true)),
    ("in", in_),
    ("join", join),
    ("split", split),
    ("splitToMap", split_to_map),
    ("loop", loop_),
];

/// consul-template's `in(l, v)`: `v` is an element of the list `l` (integers with integers,
/// floats with floats, strings with strings), or a substring of the string `l`.
fn is_in(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::List(items) => items.iter().any(|item| match (item, needle) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            _ => false,
        }),
        Value::String(s) => matches!(needle, Value::String(n) if s.contains(&**n)),
        _ => false,
    }
}

/// `in LIST VALUE`.
fn in_(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("in", values, 2, 2)?;
    Ok(Value::Bool(is_in(args.value(0), args.value(1))))
}

/// `contains VALUE LIST` (`{{ if .Tags | contains "web" }}`).
fn contains(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("contains", values, 2, 2)?;
    Ok(Value::Bool(is_in(args.value(1), args.value(0))))
}

/// `containsAll/Any/None/NotAll NEEDLES LIST`: `all` says whether the answer holds for every
/// needle (true on no needles), `absent` whether a needle must be missing rather than present.
fn contains_some(
    values: &[Value],
    name: &'static str,
    all: bool,
    absent: bool,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 2, 2)?;
    let (needles, haystack) = (args.list(0)?, args.value(1));
    let holds = |n: &Value| is_in(haystack, n) != absent;
    Ok(Value::Bool(if all { needles.iter().all(holds) } else { needles.iter().any(holds) }))
}

/// `join SEP LIST`.
fn join(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("join", values, 2, 2)?;
    Ok(string(args.strings(1)?.join(args.str(0)?)))
}

/// `split SEP STRING`: the trimmed string split on SEP; an empty list for a blank string.
fn split(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("split", values, 2, 2)?;
    let (sep, text) = (args.str(0)?, args.str(1)?.trim());
    if text.is_empty() {
        return Ok(list(Vec::new()));
    }
    let parts: Vec<Value> = if sep.is_empty() {
        text.chars().map(|c| string(c.to_string())).collect()
    } else {
        text.split(sep).map(string).collect()
    };
    Ok(list(parts))
}

/// `splitToMap SEP KVSEP STRING`: `a=1,b=2` as a map; pieces without KVSEP are left out.
fn split_to_map(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("splitToMap", values, 3, 3)?;
    let (sep, kv_sep, text) = (args.str(0)?, args.str(1)?, args.str(2)?.trim());
    let mut entries: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    if !text.is_empty() {
        for piece in text.split(sep) {
            if let Some((k, v)) = piece.split_once(kv_sep) {
                entries.insert(k.into(), string(v));
            }
        }
    }
    Ok(map(entries))
}

/// `loop END` or `loop START END`: the integers from START (0) up to END, excluded. Integers or
/// strings of digits, as consul-template accepts.
fn loop_(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("loop", values, 1, 2)?;
    let bound = |i: usize| match args.value(i) {
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.parse::<i64>().map_err(|e| fail(format!("loop: {s:?}: {e}"))),
        _ => args.int(i),
    };
    let (start, end) = if args.count() == 1 { (0, bound(0)?) } else { (bound(0)?, bound(1)?) };
    Ok(list((start..end).map(Value::Int).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<Value, TemplateError> {
        let f = FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).expect("function");
        f(args)
    }

    fn tags() -> Value {
        list(vec![string("web"), string("v1")])
    }

    #[test]
    fn membership_follows_consul_template() {
        let yes = Value::Bool(true);
        let no = Value::Bool(false);
        assert_eq!(
            call("contains", &[string("web"), tags()]).expect("contains").to_string(),
            yes.to_string()
        );
        assert_eq!(call("in", &[tags(), string("v2")]).expect("in").to_string(), no.to_string());
        assert_eq!(call("in", &[string("foo.bar"), string("o.b")]).expect("substring").to_string(), "true");
        let needles = list(vec![string("web"), string("v2")]);
        let answers: Vec<String> = ["containsAll", "containsAny", "containsNone", "containsNotAll"]
            .iter()
            .map(|n| call(n, &[needles.clone(), tags()]).expect(n).to_string())
            .collect();
        assert_eq!(answers, ["false", "true", "false", "true"]);
        let empty = list(Vec::new());
        let on_empty: Vec<String> = ["containsAll", "containsAny", "containsNone", "containsNotAll"]
            .iter()
            .map(|n| call(n, &[empty.clone(), tags()]).expect(n).to_string())
            .collect();
        assert_eq!(on_empty, ["true", "false", "true", "false"]);
    }

    #[test]
    fn lists_follow_consul_template() {
        let s = |v: Result<Value, TemplateError>| v.expect("call").to_string();
        assert_eq!(s(call("join", &[string(","), tags()])), "web,v1");
        assert_eq!(s(call("split", &[string(","), string(" a,b \n")])), "[a b]");
        assert_eq!(s(call("split", &[string(","), string("  ")])), "[]");
        assert_eq!(s(call("loop", &[Value::Int(5), Value::Int(8)])), "[5 6 7]");
        assert_eq!(s(call("loop", &[string("3")])), "[0 1 2]");
        assert!(call("join", &[string(","), list(vec![Value::Int(1)])]).is_err(), "[]string only");
        assert_eq!(s(call("splitToMap", &[string(","), string("="), string("a=1,b=2,c")])), "map[a:1 b:2]");
    }
}
