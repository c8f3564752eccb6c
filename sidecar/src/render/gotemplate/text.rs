//! consul-template's helper functions on strings and lists, with its argument order (the piped
//! value comes last: `{{ .Tags | join "," }}`, `{{ "a.b" | replaceAll "." "_" }}`).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use base64::Engine;
use gotmpl::{TemplateError, Value};
use regex::Regex;
use sha2::Digest;

use super::value::{Args, fail, from_json, list, string};

pub type HelperFn = fn(&[Value]) -> Result<Value, TemplateError>;

pub const FUNCTIONS: &[(&str, HelperFn)] = &[
    ("env", env),
    ("contains", contains),
    ("containsAll", |v| contains_some(v, "containsAll", true, false)),
    ("containsAny", |v| contains_some(v, "containsAny", false, false)),
    ("containsNone", |v| contains_some(v, "containsNone", true, true)),
    ("containsNotAll", |v| contains_some(v, "containsNotAll", false, true)),
    ("in", in_),
    ("join", join),
    ("split", split),
    ("trimSpace", |v| map_str(v, "trimSpace", |s| s.trim().to_string())),
    ("toLower", |v| map_str(v, "toLower", str::to_lowercase)),
    ("toUpper", |v| map_str(v, "toUpper", str::to_uppercase)),
    ("toTitle", |v| map_str(v, "toTitle", title)),
    ("sha256Hex", |v| map_str(v, "sha256Hex", |s| hex(&sha2::Sha256::digest(s.as_bytes())))),
    ("base64Encode", |v| map_str(v, "base64Encode", |s| base64::engine::general_purpose::STANDARD.encode(s))),
    ("base64URLEncode", |v| {
        map_str(v, "base64URLEncode", |s| base64::engine::general_purpose::URL_SAFE.encode(s))
    }),
    ("base64Decode", |v| decode(v, "base64Decode", &base64::engine::general_purpose::STANDARD)),
    ("base64URLDecode", |v| decode(v, "base64URLDecode", &base64::engine::general_purpose::URL_SAFE)),
    ("replaceAll", replace_all),
    ("regexMatch", regex_match),
    ("regexReplaceAll", regex_replace_all),
    ("indent", indent),
    ("loop", loop_),
    ("parseBool", parse_bool),
    ("parseInt", |v| parse_number(v, "parseInt", |s| s.parse::<i64>().ok().map(Value::Int))),
    ("parseUint", |v| parse_number(v, "parseUint", |s| s.parse::<u64>().ok().map(Value::Uint))),
    ("parseFloat", |v| parse_number(v, "parseFloat", |s| s.parse::<f64>().ok().map(Value::Float))),
    ("parseJSON", parse_json),
];

/// `env "NAME"`: the variable, "" when unset.
fn env(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("env", values, 1, 1)?;
    Ok(string(std::env::var(args.str(0)?).unwrap_or_default()))
}

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

fn map_str(values: &[Value], name: &'static str, f: impl Fn(&str) -> String) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, 1)?;
    Ok(string(f(args.str(0)?)))
}

/// Go's `strings.Title`: the first letter of every word upper-cased, the rest left alone.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start_of_word = true;
    for c in s.chars() {
        if start_of_word && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start_of_word = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode(values: &[Value], name: &'static str, engine: &impl Engine) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, 1)?;
    let bytes = engine.decode(args.str(0)?).map_err(|e| fail(format!("{name}: {e}")))?;
    Ok(string(String::from_utf8_lossy(&bytes)))
}

/// `replaceAll FROM TO STRING`.
fn replace_all(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("replaceAll", values, 3, 3)?;
    Ok(string(args.str(2)?.replace(args.str(0)?, args.str(1)?)))
}

/// Compiled expressions, kept across renders (a template may match every instance).
static REGEXES: LazyLock<Mutex<HashMap<String, Regex>>> = LazyLock::new(Default::default);

fn regex(name: &str, pattern: &str) -> Result<Regex, TemplateError> {
    let mut cache = REGEXES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = cache.get(pattern) {
        return Ok(re.clone());
    }
    let re = Regex::new(pattern).map_err(|e| fail(format!("{name}: {e}")))?;
    if cache.len() >= 256 {
        cache.clear();
    }
    cache.insert(pattern.to_string(), re.clone());
    Ok(re)
}

/// `regexMatch RE STRING`.
fn regex_match(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("regexMatch", values, 2, 2)?;
    Ok(Value::Bool(regex("regexMatch", args.str(0)?)?.is_match(args.str(1)?)))
}

/// `regexReplaceAll RE REPLACEMENT STRING`; `$1`, `${name}` expand as in Go.
fn regex_replace_all(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("regexReplaceAll", values, 3, 3)?;
    let re = regex("regexReplaceAll", args.str(0)?)?;
    Ok(string(re.replace_all(args.str(2)?, args.str(1)?)))
}

/// `indent N STRING`: N spaces before every non-empty line.
fn indent(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("indent", values, 2, 2)?;
    let spaces =
        usize::try_from(args.int(0)?).map_err(|_| fail("indent value must be a positive integer"))?;
    let prefix = " ".repeat(spaces);
    let mut out = String::new();
    let mut line_start = true;
    for c in args.str(1)?.chars() {
        if line_start && c != '\n' {
            out.push_str(&prefix);
        }
        out.push(c);
        line_start = c == '\n';
    }
    Ok(string(out))
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

/// `parseBool`: Go's `strconv.ParseBool` spellings; "" is false.
fn parse_bool(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("parseBool", values, 1, 1)?;
    match args.str(0)? {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Value::Bool(false)),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Value::Bool(true)),
        other => Err(fail(format!("parseBool: invalid syntax: {other:?}"))),
    }
}

/// `parseInt`/`parseUint`/`parseFloat`: base 10; "" is 0.
fn parse_number(
    values: &[Value],
    name: &'static str,
    parse: impl Fn(&str) -> Option<Value>,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, 1)?;
    let text = args.str(0)?;
    let text = if text.is_empty() { "0" } else { text };
    parse(text).ok_or_else(|| fail(format!("{name}: invalid syntax: {text:?}")))
}

/// `parseJSON`: the decoded document; "" is an empty map.
fn parse_json(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("parseJSON", values, 1, 1)?;
    let text = args.str(0)?;
    if text.is_empty() {
        return Ok(super::value::map(Default::default()));
    }
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| fail(format!("parseJSON: {e}")))?;
    Ok(from_json(&doc))
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
    fn strings_follow_go() {
        let s = |v: Result<Value, TemplateError>| v.expect("call").to_string();
        assert_eq!(s(call("join", &[string(","), tags()])), "web,v1");
        assert_eq!(s(call("split", &[string(","), string(" a,b \n")])), "[a b]");
        assert_eq!(s(call("split", &[string(","), string("  ")])), "[]");
        assert_eq!(s(call("toTitle", &[string("hello wide-world")])), "Hello Wide-World");
        assert_eq!(s(call("replaceAll", &[string("."), string("_"), string("a.b.c")])), "a_b_c");
        assert_eq!(
            s(call("regexReplaceAll", &[string("foo([.a-z]+)"), string("$1"), string("foo.bar")])),
            ".bar"
        );
        assert_eq!(s(call("regexMatch", &[string("^v[0-9]$"), string("v1")])), "true");
        assert_eq!(s(call("indent", &[Value::Int(2), string("a\n\nb")])), "  a\n\n  b");
        assert_eq!(s(call("loop", &[Value::Int(5), Value::Int(8)])), "[5 6 7]");
        assert_eq!(s(call("loop", &[string("3")])), "[0 1 2]");
        assert_eq!(
            s(call("sha256Hex", &[string("bladibla")])),
            "54cf4c66bcabb5c20e25331c01dd600b73369e97a947861bd8d3a0e0b8b3d70b"
        );
        assert_eq!(s(call("base64Decode", &[string("aGVsbG8=")])), "hello");
        assert_eq!(s(call("parseInt", &[string("")])), "0");
        assert_eq!(s(call("parseBool", &[string("True")])), "true");
        assert!(call("parseInt", &[string("1.5")]).is_err());
        assert!(call("join", &[string(","), list(vec![Value::Int(1)])]).is_err(), "[]string only");
    }
}
