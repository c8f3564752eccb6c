//! The Sprig functions consul-template bundles, under its `sprig_` prefix (`sprig_default`,
//! `sprig_trim`, `sprig_dict`, ...): the common subset, with Sprig's argument order and
//! semantics. Left out: the random and time ones (their output would change every render and
//! reload the consumer each time), `set`/`unset` (Sprig mutates the dictionary in place, which
//! template values here cannot), and the rarer text and crypto helpers.

mod collections;
mod strings;

use gotmpl::{TemplateError, Value};

use super::text::HelperFn;
use super::value::{Args, fail, type_name};

/// Every function of the subset, with its `sprig_` name.
pub fn functions() -> impl Iterator<Item = (String, HelperFn)> {
    strings::FUNCTIONS.iter().chain(collections::FUNCTIONS).map(|(name, f)| (format!("sprig_{name}"), *f))
}

/// Sprig's `strval`: strings as they are, anything else as Go's `%v` prints it.
fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Sprig's `empty`: nil, false, 0, "" and empty lists and maps.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
        Value::Function(_) => false,
    }
}

/// Sprig's integer conversion: integers, floats truncated, numeric strings, booleans; else 0.
fn to_int(value: &Value) -> i64 {
    match value {
        Value::Int(i) => *i,
        Value::Uint(u) => i64::try_from(*u).unwrap_or(i64::MAX),
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64))
            .unwrap_or(0),
        _ => 0,
    }
}

fn to_float(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// A list argument (Sprig accepts any slice; nil is empty).
fn list_arg<'a>(args: &Args<'a>, i: usize) -> Result<&'a [Value], TemplateError> {
    match args.value(i) {
        Value::List(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => Err(fail(format!("{}: cannot use {} as a list", args.name, type_name(other)))),
    }
}

/// Deep equality as Sprig's `reflect.DeepEqual` sees template data.
fn same(a: &Value, b: &Value) -> bool {
    super::value::to_json(a) == super::value::to_json(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::gotemplate::value::{list, string};

    fn call(name: &str, args: &[Value]) -> String {
        let f = functions().find(|(n, _)| n == name).map(|(_, f)| f).unwrap_or_else(|| panic!("{name}"));
        f(args).map_or_else(|e| format!("error: {e}"), |v| v.to_string())
    }

    #[test]
    fn strings() {
        assert_eq!(call("sprig_default", &[string("foo"), string("")]), "foo");
        assert_eq!(call("sprig_default", &[string("foo"), string("bar")]), "bar");
        assert_eq!(call("sprig_default", &[string("foo")]), "foo");
        assert_eq!(call("sprig_coalesce", &[Value::Nil, string(""), Value::Int(3)]), "3");
        assert_eq!(call("sprig_ternary", &[string("yes"), string("no"), Value::Bool(false)]), "no");
        assert_eq!(call("sprig_trim", &[string("  a b \n")]), "a b");
        assert_eq!(call("sprig_trimAll", &[string("$"), string("$5.00$")]), "5.00");
        assert_eq!(call("sprig_upper", &[string("ab")]), "AB");
        assert_eq!(call("sprig_title", &[string("hello world")]), "Hello World");
        assert_eq!(call("sprig_repeat", &[Value::Int(3), string("ab")]), "ababab");
        assert_eq!(call("sprig_substr", &[Value::Int(1), Value::Int(3), string("hello")]), "el");
        assert_eq!(call("sprig_trunc", &[Value::Int(-3), string("hello")]), "llo");
        assert_eq!(call("sprig_quote", &[string("a\"b"), Value::Nil, Value::Int(1)]), "\"a\\\"b\" \"1\"");
        assert_eq!(call("sprig_squote", &[string("a")]), "'a'");
        assert_eq!(call("sprig_cat", &[string("a"), Value::Nil, Value::Int(2)]), "a 2");
        assert_eq!(call("sprig_indent", &[Value::Int(2), string("a\n\nb")]), "  a\n  \n  b");
        assert_eq!(call("sprig_nindent", &[Value::Int(2), string("a")]), "\n  a");
        assert_eq!(call("sprig_replace", &[string(" "), string("-"), string("a b c")]), "a-b-c");
        assert_eq!(call("sprig_nospace", &[string(" a b\tc ")]), "abc");
        assert_eq!(call("sprig_contains", &[string("cat"), string("catch")]), "true");
        assert_eq!(call("sprig_hasPrefix", &[string("ca"), string("catch")]), "true");
        assert_eq!(call("sprig_plural", &[string("one"), string("many"), Value::Int(2)]), "many");
        assert_eq!(call("sprig_b64dec", &[string("aGVsbG8=")]), "hello");
        assert_eq!(
            call("sprig_regexReplaceAll", &[string("a(x*)b"), string("-ab-axxb-"), string("${1}W")]),
            "-W-xxW-"
        );
        assert_eq!(
            call("sprig_regexFindAll", &[string("a."), string("abacad"), Value::Int(-1)]),
            "[ab ac ad]"
        );
        assert_eq!(call("sprig_regexSplit", &[string("z+"), string("pizza"), Value::Int(-1)]), "[pi a]");
        assert_eq!(call("sprig_toString", &[Value::Int(5)]), "5");
        assert_eq!(call("sprig_atoi", &[string("12")]), "12");
        assert_eq!(call("sprig_int", &[string("nope")]), "0");
        assert_eq!(call("sprig_add", &[Value::Int(1), string("2"), Value::Float(3.9)]), "6");
        assert_eq!(call("sprig_sub", &[Value::Int(3), Value::Int(5)]), "-2");
        assert_eq!(call("sprig_div", &[Value::Int(7), Value::Int(2)]), "3");
        assert_eq!(call("sprig_max", &[Value::Int(1), Value::Int(9), Value::Int(4)]), "9");
        assert!(call("sprig_div", &[Value::Int(1), Value::Int(0)]).starts_with("error"));
    }

    #[test]
    fn lists_and_dicts() {
        let l = list(vec![string("b"), string("a"), string("b"), string("")]);
        assert_eq!(call("sprig_list", &[string("x"), Value::Int(1)]), "[x 1]");
        assert_eq!(call("sprig_first", std::slice::from_ref(&l)), "b");
        assert_eq!(call("sprig_last", std::slice::from_ref(&l)), "");
        assert_eq!(call("sprig_rest", std::slice::from_ref(&l)), "[a b ]");
        assert_eq!(call("sprig_uniq", std::slice::from_ref(&l)), "[b a ]");
        assert_eq!(call("sprig_compact", std::slice::from_ref(&l)), "[b a b]");
        assert_eq!(call("sprig_sortAlpha", std::slice::from_ref(&l)), "[ a b b]");
        assert_eq!(call("sprig_without", &[l.clone(), string("b")]), "[a ]");
        assert_eq!(call("sprig_has", &[string("a"), l.clone()]), "true");
        assert_eq!(call("sprig_append", &[l.clone(), string("z")]), "[b a b  z]");
        assert_eq!(call("sprig_join", &[string("-"), list(vec![string("a"), Value::Int(1)])]), "a-1");
        assert_eq!(call("sprig_splitList", &[string(","), string("a,b")]), "[a b]");
        assert_eq!(call("sprig_split", &[string(","), string("a,b")]), "map[_0:a _1:b]");
        let d = collections::dict_of(&[("name", string("web")), ("port", Value::Int(80))]);
        assert_eq!(
            call("sprig_dict", &[string("name"), string("web"), string("port"), Value::Int(80)]),
            d.to_string()
        );
        assert_eq!(call("sprig_get", &[d.clone(), string("name")]), "web");
        assert_eq!(call("sprig_get", &[d.clone(), string("nope")]), "");
        assert_eq!(call("sprig_hasKey", &[d.clone(), string("port")]), "true");
        assert_eq!(call("sprig_keys", std::slice::from_ref(&d)), "[name port]");
        assert_eq!(call("sprig_pick", &[d.clone(), string("port")]), "map[port:80]");
        assert_eq!(call("sprig_omit", &[d, string("port")]), "map[name:web]");
        assert_eq!(call("sprig_empty", &[list(Vec::new())]), "true");
    }
}
