//! Sprig's string, conversion, math and regular-expression functions (the string is the last
//! argument, so it can be piped: `{{ .Name | sprig_trunc 5 }}`).

use base64::Engine;
use gotmpl::{TemplateError, Value};
use sha2::Digest;

use super::{Args, HelperFn, fail, is_empty, list_arg, strval, to_float, to_int};
use crate::render::gotemplate::text::{regex, title};
use crate::render::gotemplate::value::{list, string};

pub const FUNCTIONS: &[(&str, HelperFn)] = &[
    ("default", |v| {
        let args = Args::new("sprig_default", v, 1, 2)?;
        Ok(if args.count() == 1 || is_empty(args.value(1)) { args.value(0) } else { args.value(1) }.clone())
    }),
    ("empty", |v| Ok(Value::Bool(is_empty(Args::new("sprig_empty", v, 1, 1)?.value(0))))),
    ("coalesce", |v| Ok(v.iter().find(|x| !is_empty(x)).cloned().unwrap_or(Value::Nil))),
    ("ternary", |v| {
        let args = Args::new("sprig_ternary", v, 3, 3)?;
        match args.value(2) {
            Value::Bool(b) => Ok(args.value(if *b { 0 } else { 1 }).clone()),
            _ => Err(fail("sprig_ternary: the condition must be a bool")),
        }
    }),
    ("trim", |v| one("sprig_trim", v, |s| s.trim().to_string())),
    ("trimAll", |v| two("sprig_trimAll", v, |cut, s| s.trim_matches(|c| cut.contains(c)).to_string())),
    ("trimPrefix", |v| two("sprig_trimPrefix", v, |p, s| s.strip_prefix(p).unwrap_or(s).to_string())),
    ("trimSuffix", |v| two("sprig_trimSuffix", v, |p, s| s.strip_suffix(p).unwrap_or(s).to_string())),
    ("upper", |v| one("sprig_upper", v, str::to_uppercase)),
    ("lower", |v| one("sprig_lower", v, str::to_lowercase)),
    ("title", |v| one("sprig_title", v, title)),
    ("nospace", |v| one("sprig_nospace", v, |s| s.chars().filter(|c| !c.is_whitespace()).collect())),
    ("b64enc", |v| one("sprig_b64enc", v, |s| base64::engine::general_purpose::STANDARD.encode(s))),
    ("b64dec", |v| {
        one("sprig_b64dec", v, |s| match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => e.to_string(),
        })
    }),
    ("sha256sum", |v| {
        one("sprig_sha256sum", v, |s| {
            sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
        })
    }),
    ("contains", |v| test("sprig_contains", v, |sub, s| s.contains(sub))),
    ("hasPrefix", |v| test("sprig_hasPrefix", v, |p, s| s.starts_with(p))),
    ("hasSuffix", |v| test("sprig_hasSuffix", v, |p, s| s.ends_with(p))),
    ("replace", |v| {
        let args = Args::new("sprig_replace", v, 3, 3)?;
        Ok(string(strval(args.value(2)).replace(&strval(args.value(0)), &strval(args.value(1)))))
    }),
    ("repeat", |v| {
        let args = Args::new("sprig_repeat", v, 2, 2)?;
        Ok(string(strval(args.value(1)).repeat(usize::try_from(to_int(args.value(0))).unwrap_or(0))))
    }),
    ("substr", substr),
    ("trunc", trunc),
    ("plural", |v| {
        let args = Args::new("sprig_plural", v, 3, 3)?;
        Ok(args.value(if to_int(args.value(2)) == 1 { 0 } else { 1 }).clone())
    }),
    ("indent", |v| indent(v, "sprig_indent", false)),
    ("nindent", |v| indent(v, "sprig_nindent", true)),
    ("quote", |v| Ok(string(quoted(v, |s| format!("{s:?}"))))),
    ("squote", |v| Ok(string(quoted(v, |s| format!("'{s}'"))))),
    ("cat", |v| {
        Ok(string(v.iter().filter(|x| !matches!(x, Value::Nil)).map(strval).collect::<Vec<_>>().join(" ")))
    }),
    ("toString", |v| Ok(string(strval(Args::new("sprig_toString", v, 1, 1)?.value(0))))),
    ("toStrings", |v| {
        let args = Args::new("sprig_toStrings", v, 1, 1)?;
        Ok(list(list_arg(&args, 0)?.iter().map(|x| string(strval(x))).collect()))
    }),
    ("atoi", |v| {
        Ok(Value::Int(strval(Args::new("sprig_atoi", v, 1, 1)?.value(0)).trim().parse().unwrap_or(0)))
    }),
    ("int", |v| Ok(Value::Int(to_int(Args::new("sprig_int", v, 1, 1)?.value(0))))),
    ("int64", |v| Ok(Value::Int(to_int(Args::new("sprig_int64", v, 1, 1)?.value(0))))),
    ("float64", |v| Ok(Value::Float(to_float(Args::new("sprig_float64", v, 1, 1)?.value(0))))),
    ("add", |v| Ok(Value::Int(v.iter().map(to_int).fold(0i64, i64::wrapping_add)))),
    ("add1", |v| Ok(Value::Int(to_int(Args::new("sprig_add1", v, 1, 1)?.value(0)).wrapping_add(1)))),
    ("mul", |v| Ok(Value::Int(v.iter().map(to_int).fold(1i64, i64::wrapping_mul)))),
    ("sub", |v| arithmetic(v, "sprig_sub", |a, b| Some(a.wrapping_sub(b)))),
    ("div", |v| arithmetic(v, "sprig_div", i64::checked_div)),
    ("mod", |v| arithmetic(v, "sprig_mod", i64::checked_rem)),
    ("max", |v| extreme(v, "sprig_max", i64::max)),
    ("min", |v| extreme(v, "sprig_min", i64::min)),
    ("floor", |v| Ok(Value::Float(to_float(Args::new("sprig_floor", v, 1, 1)?.value(0)).floor()))),
    ("ceil", |v| Ok(Value::Float(to_float(Args::new("sprig_ceil", v, 1, 1)?.value(0)).ceil()))),
    ("regexMatch", |v| {
        let args = Args::new("sprig_regexMatch", v, 2, 2)?;
        Ok(Value::Bool(regex("sprig_regexMatch", args.str(0)?)?.is_match(&strval(args.value(1)))))
    }),
    ("regexFind", |v| {
        let args = Args::new("sprig_regexFind", v, 2, 2)?;
        let text = strval(args.value(1));
        let re = regex("sprig_regexFind", args.str(0)?)?;
        Ok(string(re.find(&text).map_or("", |m| m.as_str())))
    }),
    ("regexFindAll", |v| {
        let args = Args::new("sprig_regexFindAll", v, 3, 3)?;
        let (text, limit) = (strval(args.value(1)), to_int(args.value(2)));
        let re = regex("sprig_regexFindAll", args.str(0)?)?;
        let found = re.find_iter(&text).map(|m| string(m.as_str()));
        Ok(list(if limit < 0 { found.collect() } else { found.take(limit as usize).collect() }))
    }),
    ("regexReplaceAll", |v| replace_regex(v, "sprig_regexReplaceAll", false)),
    ("regexReplaceAllLiteral", |v| replace_regex(v, "sprig_regexReplaceAllLiteral", true)),
    ("regexSplit", |v| {
        let args = Args::new("sprig_regexSplit", v, 3, 3)?;
        let (text, limit) = (strval(args.value(1)), to_int(args.value(2)));
        let re = regex("sprig_regexSplit", args.str(0)?)?;
        let parts: Vec<Value> = match limit {
            0 => Vec::new(),
            n if n < 0 => re.split(&text).map(string).collect(),
            n => re.splitn(&text, n as usize).map(string).collect(),
        };
        Ok(list(parts))
    }),
    ("env", |v| {
        Ok(string(std::env::var(strval(Args::new("sprig_env", v, 1, 1)?.value(0))).unwrap_or_default()))
    }),
    ("expandenv", |v| one("sprig_expandenv", v, expand_env)),
];

fn one(name: &'static str, values: &[Value], f: impl Fn(&str) -> String) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, 1)?;
    Ok(string(f(&strval(args.value(0)))))
}

fn two(
    name: &'static str,
    values: &[Value],
    f: impl Fn(&str, &str) -> String,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 2, 2)?;
    Ok(string(f(&strval(args.value(0)), &strval(args.value(1)))))
}

fn test(
    name: &'static str,
    values: &[Value],
    f: impl Fn(&str, &str) -> bool,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 2, 2)?;
    Ok(Value::Bool(f(&strval(args.value(0)), &strval(args.value(1)))))
}

/// `substr START END STRING`: a negative START is 0; a negative or too large END is the end.
fn substr(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("sprig_substr", values, 3, 3)?;
    let chars: Vec<char> = strval(args.value(2)).chars().collect();
    let start = usize::try_from(to_int(args.value(0))).unwrap_or(0).min(chars.len());
    let end = usize::try_from(to_int(args.value(1))).unwrap_or(chars.len()).min(chars.len());
    Ok(string(chars.get(start..end.max(start)).map(|c| c.iter().collect::<String>()).unwrap_or_default()))
}

/// `trunc N STRING`: the first N characters, or the last -N.
fn trunc(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("sprig_trunc", values, 2, 2)?;
    let chars: Vec<char> = strval(args.value(1)).chars().collect();
    let n = to_int(args.value(0));
    let kept: String = if n < 0 {
        chars[chars.len().saturating_sub(n.unsigned_abs() as usize)..].iter().collect()
    } else {
        chars.iter().take(n as usize).collect()
    };
    Ok(string(kept))
}

/// `indent N STRING`: N spaces before every line, empty ones too; `nindent` adds a newline first.
fn indent(values: &[Value], name: &'static str, newline: bool) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 2, 2)?;
    let pad = " ".repeat(usize::try_from(to_int(args.value(0))).unwrap_or(0));
    let text = format!("{pad}{}", strval(args.value(1)).replace('\n', &format!("\n{pad}")));
    Ok(string(if newline { format!("\n{text}") } else { text }))
}

/// `quote`/`squote`: every non-nil argument quoted, joined by spaces.
fn quoted(values: &[Value], quote: impl Fn(&str) -> String) -> String {
    values
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(|v| quote(&strval(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn arithmetic(
    values: &[Value],
    name: &'static str,
    op: fn(i64, i64) -> Option<i64>,
) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 2, 2)?;
    op(to_int(args.value(0)), to_int(args.value(1)))
        .map(Value::Int)
        .ok_or_else(|| fail(format!("{name}: integer divide by zero")))
}

fn extreme(values: &[Value], name: &'static str, pick: fn(i64, i64) -> i64) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, usize::MAX)?;
    Ok(Value::Int(args.values.iter().map(to_int).reduce(pick).unwrap_or(0)))
}

/// `regexReplaceAll RE STRING REPLACEMENT` (Sprig's order), `$1` expanded unless `literal`.
fn replace_regex(values: &[Value], name: &'static str, literal: bool) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 3, 3)?;
    let re = regex(name, args.str(0)?)?;
    let (text, with) = (strval(args.value(1)), strval(args.value(2)));
    let replaced = if literal {
        re.replace_all(&text, regex::NoExpand(&with))
    } else {
        re.replace_all(&text, with.as_str())
    };
    Ok(string(replaced))
}

/// Go's `os.ExpandEnv`: `$NAME` and `${NAME}` by the environment ("" when unset).
fn expand_env(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..len], len)
        };
        if consumed == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}
