//! consul-template's helper functions on strings, with its argument order (the piped value comes
//! last: `{{ "a.b" | replaceAll "." "_" }}`); lists are in `lists.rs`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use base64::Engine;
use gotmpl::{TemplateError, Value};
use regex::Regex;
use sha2::Digest;

use super::value::{Args, fail, from_json, string};

pub type HelperFn = fn(&[Value]) -> Result<Value, TemplateError>;

pub const FUNCTIONS: &[(&str, HelperFn)] = &[
    ("env", env),
    ("trimSpace", |v| map_str(v, "trimSpace", |s| s.trim().to_string())),
    ("trim", |v| around(v, "trim", |cut, s| s.trim_matches(|c| cut.contains(c)).to_string())),
    ("trimPrefix", |v| around(v, "trimPrefix", |p, s| s.strip_prefix(p).unwrap_or(s).to_string())),
    ("trimSuffix", |v| around(v, "trimSuffix", |p, s| s.strip_suffix(p).unwrap_or(s).to_string())),
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
    ("parseBool", parse_bool),
    ("parseInt", |v| parse_number(v, "parseInt", |s| s.parse::<i64>().ok().map(Value::Int))),
    ("parseUint", |v| parse_number(v, "parseUint", |s| s.parse::<u64>().ok().map(Value::Uint))),
    ("parseFloat", |v| parse_number(v, "parseFloat", |s| s.parse::<f64>().ok().map(Value::Float))),
    ("parseJSON", parse_json),
    ("parseYAML", super::yaml::parse),
    ("md5sum", |v| map_str(v, "md5sum", |s| hex(&md5::Md5::digest(s.as_bytes())))),
    ("sockaddr", super::sockaddr::sockaddr),
];

/// `env "NAME"`: the variable, "" when unset.
fn env(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("env", values, 1, 1)?;
    Ok(string(std::env::var(args.str(0)?).unwrap_or_default()))
}

/// `NAME ARG STRING` (the string piped last): `trim CUTSET`, `trimPrefix PREFIX`, `trimSuffix SUFFIX`.
fn around(
    values: &[Value],
    name: &'static str,
    f: impl Fn(&str, &str) -> String,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 2, 2)?;
    Ok(string(f(args.str(0)?, args.str(1)?)))
}

fn map_str(values: &[Value], name: &'static str, f: impl Fn(&str) -> String) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, 1)?;
    Ok(string(f(args.str(0)?)))
}

/// Go's `strings.Title`: the first letter of every word upper-cased, the rest left alone.
pub(super) fn title(s: &str) -> String {
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

pub(super) fn regex(name: &str, pattern: &str) -> Result<Regex, TemplateError> {
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

    #[test]
    fn strings_follow_go() {
        let s = |v: Result<Value, TemplateError>| v.expect("call").to_string();
        assert_eq!(s(call("toTitle", &[string("hello wide-world")])), "Hello Wide-World");
        assert_eq!(s(call("replaceAll", &[string("."), string("_"), string("a.b.c")])), "a_b_c");
        assert_eq!(
            s(call("regexReplaceAll", &[string("foo([.a-z]+)"), string("$1"), string("foo.bar")])),
            ".bar"
        );
        assert_eq!(s(call("regexMatch", &[string("^v[0-9]$"), string("v1")])), "true");
        assert_eq!(s(call("trim", &[string("/x"), string("//a/b/x")])), "a/b");
        assert_eq!(s(call("trimPrefix", &[string("web-"), string("web-01")])), "01");
        assert_eq!(s(call("trimSuffix", &[string(".local"), string("db.local")])), "db");
        assert_eq!(s(call("indent", &[Value::Int(2), string("a\n\nb")])), "  a\n\n  b");
        assert_eq!(
            s(call("sha256Hex", &[string("bladibla")])),
            "54cf4c66bcabb5c20e25331c01dd600b73369e97a947861bd8d3a0e0b8b3d70b"
        );
        assert_eq!(s(call("md5sum", &[string("hello")])), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(s(call("base64Decode", &[string("aGVsbG8=")])), "hello");
        assert_eq!(s(call("parseInt", &[string("")])), "0");
        assert_eq!(s(call("parseBool", &[string("True")])), "true");
        assert!(call("parseInt", &[string("1.5")]).is_err());
    }
}
