//! consul-template's functions that reshape catalog data: grouping (`byKey`, `byTag`,
//! `byMeta`), `explode`, and encoding (`toJSON`, `toJSONPretty`, `toYAML`).

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{TemplateError, Value};

use super::value::{Args, fail, field, list, map, string, to_json};

pub const FUNCTIONS: &[(&str, super::text::HelperFn)] = &[
    ("byKey", by_key),
    ("byTag", by_tag),
    ("byMeta", by_meta),
    ("explode", explode),
    ("explodeMap", explode_map),
    ("toJSON", |v| encode_json(v, "toJSON", false)),
    ("toJSONPretty", |v| encode_json(v, "toJSONPretty", true)),
    ("toUnescapedJSON", |v| encode_json(v, "toUnescapedJSON", false)),
    ("toUnescapedJSONPretty", |v| encode_json(v, "toUnescapedJSONPretty", true)),
    ("toYAML", to_yaml),
    ("toTOML", to_toml),
];

fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    field(value, name).and_then(Value::as_str).unwrap_or_default()
}

/// `byKey PAIRS`: top-level directory → (rest of the key → pair with that rest as `Key`).
fn by_key(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("byKey", values, 1, 1)?;
    let mut groups: BTreeMap<Arc<str>, BTreeMap<Arc<str>, Value>> = BTreeMap::new();
    for pair in args.list(0)? {
        let Some((top, rest)) = str_field(pair, "Key").split_once('/') else { continue };
        if rest.is_empty() {
            continue;
        }
        let Value::Map(fields) = pair else { continue };
        let mut renamed = (**fields).clone();
        renamed.insert("Key".into(), string(rest));
        groups.entry(top.into()).or_default().insert(rest.into(), map(renamed));
    }
    Ok(map(groups.into_iter().map(|(k, v)| (k, map(v))).collect()))
}

/// `byTag SERVICES`: tag → the services carrying it, in their order.
fn by_tag(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("byTag", values, 1, 1)?;
    let mut groups: BTreeMap<Arc<str>, Vec<Value>> = BTreeMap::new();
    for item in args.list(0)? {
        let tags = match field(item, "Tags") {
            Some(Value::List(tags)) => tags.clone(),
            _ => continue,
        };
        for tag in tags.iter().filter_map(Value::as_str) {
            groups.entry(tag.into()).or_default().push(item.clone());
        }
    }
    Ok(map(groups.into_iter().map(|(k, v)| (k, list(v))).collect()))
}

/// `byMeta "key1,key2|int" SERVICES`: services grouped by their meta values joined with `_`
/// (`_no_KEY_` when missing; `|int` pads numbers to 5 digits; other characters become `_`).
fn by_meta(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("byMeta", values, 2, 2)?;
    let keys: Vec<&str> = args.str(0)?.split(',').collect();
    let normalize = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
    };
    let mut groups: BTreeMap<Arc<str>, Vec<Value>> = BTreeMap::new();
    for service in args.list(1)? {
        let meta = field(service, "ServiceMeta");
        let mut parts = Vec::new();
        for key in &keys {
            let (name, as_int) = match key.strip_suffix("|int") {
                Some(name) => (name, true),
                None => (*key, false),
            };
            let found = meta.and_then(|m| field(m, name)).and_then(Value::as_str).filter(|v| !v.is_empty());
            let value = match (found, as_int) {
                (Some(v), false) => v.to_string(),
                (None, false) => format!("_no_{name}_"),
                (v, true) => {
                    let n: i64 = v.unwrap_or("0").parse().map_err(|_| {
                        fail(format!("byMeta: cannot parse {:?} as number", v.unwrap_or_default()))
                    })?;
                    format!("{n:05}")
                }
            };
            parts.push(normalize(&value));
        }
        groups.entry(parts.join("_").into()).or_default().push(service.clone());
    }
    Ok(map(groups.into_iter().map(|(k, v)| (k, list(v))).collect()))
}

/// Puts `value` at the path `a/b/c` of `root`, making the maps on the way.
fn nest(
    root: &mut serde_json::Map<String, serde_json::Value>,
    path: &str,
    value: serde_json::Value,
    name: &str,
) -> Result<(), TemplateError> {
    let mut node = root;
    let mut segments = path.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_none() {
            if !segment.is_empty() {
                node.insert(segment.to_string(), value);
            }
            return Ok(());
        }
        let next = node.entry(segment.to_string()).or_insert_with(|| serde_json::json!({}));
        node = next
            .as_object_mut()
            .ok_or_else(|| fail(format!("{name}: not a map: {path:?}: {segment:?} already has a value")))?;
    }
    Ok(())
}

/// `explode PAIRS`: `a/b/c = v` pairs as nested maps `{a: {b: {c: v}}}`.
fn explode(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("explode", values, 1, 1)?;
    let mut root = serde_json::Map::new();
    for pair in args.list(0)? {
        let value = field(pair, "Value").map(to_json).unwrap_or(serde_json::Value::Null);
        nest(&mut root, str_field(pair, "Key"), value, "explode")?;
    }
    Ok(super::value::from_json(&serde_json::Value::Object(root)))
}

/// `explodeMap MAP`: a map with `a/b/c` keys as nested maps, as `explode` does for pairs.
fn explode_map(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("explodeMap", values, 1, 1)?;
    let Value::Map(entries) = args.value(0) else {
        return Err(fail(format!(
            "explodeMap: argument has type {}; want a map",
            super::value::type_name(args.value(0))
        )));
    };
    let mut root = serde_json::Map::new();
    for (key, value) in entries.iter() {
        nest(&mut root, key, to_json(value), "explodeMap")?;
    }
    Ok(super::value::from_json(&serde_json::Value::Object(root)))
}

/// Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029; they only occur in strings.
fn escape_like_go(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn encode_json(values: &[Value], name: &'static str, pretty: bool) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 1, 1)?;
    let doc = to_json(args.value(0));
    let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) };
    let text = text.map_err(|e| fail(format!("{name}: {e}")))?;
    Ok(string(if name.starts_with("toUnescaped") { text } else { escape_like_go(text) }))
}

fn to_toml(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("toTOML", values, 1, 1)?;
    super::toml::emit(&to_json(args.value(0))).map(string).map_err(|e| fail(format!("toTOML: {e}")))
}

fn to_yaml(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("toYAML", values, 1, 1)?;
    Ok(string(super::yaml::emit(&to_json(args.value(0)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: &str) -> Value {
        map([("Key".into(), string(key)), ("Value".into(), string(value))].into_iter().collect())
    }

    fn service(id: &str, tags: &[&str], meta: &[(&str, &str)]) -> Value {
        let tags = list(tags.iter().map(string).collect());
        let meta = map(meta.iter().map(|(k, v)| (Arc::from(*k), string(v))).collect());
        map([("ID".into(), string(id)), ("Tags".into(), tags), ("ServiceMeta".into(), meta)]
            .into_iter()
            .collect())
    }

    #[test]
    fn grouping_and_explode() {
        let pairs = list(vec![pair("elasticsearch/a", "1"), pair("redis/a/b", "3"), pair("top", "x")]);
        let grouped = by_key(std::slice::from_ref(&pairs)).expect("byKey");
        assert_eq!(to_json(&grouped)["redis"]["a/b"]["Key"], "a/b");
        assert!(to_json(&grouped).get("top").is_none(), "keys without a directory are dropped");
        let tree = explode(std::slice::from_ref(&pairs)).expect("explode");
        let flat = map([("a/b".into(), string("1")), ("a/c".into(), string("2"))].into_iter().collect());
        assert_eq!(
            to_json(&explode_map(&[flat]).expect("explodeMap")),
            serde_json::json!({"a": {"b": "1", "c": "2"}})
        );
        assert_eq!(
            to_json(&tree),
            serde_json::json!({"elasticsearch": {"a": "1"}, "redis": {"a": {"b": "3"}}, "top": "x"})
        );
        let services = list(vec![
            service("r1", &["a", "b"], &[("environment", "dev"), ("shard", "1")]),
            service("r2", &["b"], &[("environment", "prod")]),
        ]);
        let tags = by_tag(std::slice::from_ref(&services)).expect("byTag");
        assert_eq!(to_json(&tags)["b"].as_array().map(Vec::len), Some(2));
        let meta = by_meta(&[string("environment,shard|int"), services]).expect("byMeta");
        let keys: Vec<String> = to_json(&meta).as_object().expect("map").keys().cloned().collect();
        assert_eq!(keys, ["dev_00001", "prod_00000"]);
    }

    #[test]
    fn json_escapes_html_like_go() {
        let out = encode_json(&[string("<a&b>")], "toJSON", false).expect("toJSON");
        assert_eq!(out.to_string(), r#""\u003ca\u0026b\u003e""#);
        let raw = encode_json(&[string("<a&b>")], "toUnescapedJSON", false).expect("toUnescapedJSON");
        assert_eq!(raw.to_string(), r#""<a&b>""#);
    }
}
