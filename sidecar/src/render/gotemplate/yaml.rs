//! `toYAML`: JSON-shaped data as YAML in the layout of Go's yaml.v2, which consul-template uses
//! (keys sorted, two-space indents, list items at their key's indent, strings quoted only when
//! they would read back as something else); and `parseYAML`, YAML text as template values.

use serde_json::Value;

/// The YAML text, without a trailing newline (consul-template trims it).
pub fn emit(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => mapping(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => sequence(a, 0, &mut out),
        other => out.push_str(&scalar(other)),
    }
    out.trim_end().to_string()
}

fn pad(indent: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn mapping(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    let mut first = true;
    for (key, value) in m {
        // The first entry of a mapping inside a list item continues the `- ` line.
        if !first || !out.ends_with("- ") {
            pad(indent, out);
        }
        first = false;
        out.push_str(&string(key));
        out.push(':');
        nested(value, indent, indent + 2, out);
    }
}

fn sequence(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        pad(indent, out);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => mapping(m, indent + 2, out),
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                sequence(a, indent + 2, out);
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// The value after `key:` — inline for scalars and empty collections, else on the next lines.
fn nested(value: &Value, key_indent: usize, child_indent: usize, out: &mut String) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(m, child_indent, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(a, key_indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// YAML 1.1 words that read back as booleans or null.
const RESERVED: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
    "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
];

fn reads_as_number(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    t.parse::<f64>().is_ok()
        || t.starts_with("0x")
        || t.starts_with("0o")
        || t.starts_with("0b")
        || [".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"].contains(&t)
        || (t.contains('_') && t.replace('_', "").parse::<f64>().is_ok())
}

fn string(s: &str) -> String {
    let plain = !s.is_empty()
        && !RESERVED.contains(&s)
        && !reads_as_number(s)
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(char::is_control);
    if plain {
        return s.to_string();
    }
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// `parseYAML`: the document as template values; mappings become maps keyed by their keys' text
/// (as consul-template turns yaml.v2's maps into `map[string]interface{}`); "" is an empty map.
pub fn parse(values: &[gotmpl::Value]) -> Result<gotmpl::Value, gotmpl::TemplateError> {
    let args = super::value::Args::new("parseYAML", values, 1, 1)?;
    let text = args.str(0)?;
    let docs = yaml_rust2::YamlLoader::load_from_str(text)
        .map_err(|e| super::value::fail(format!("parseYAML: {e}")))?;
    Ok(match docs.first() {
        None => super::value::map(Default::default()),
        Some(doc) => template_value(doc),
    })
}

fn template_value(yaml: &yaml_rust2::Yaml) -> gotmpl::Value {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Integer(i) => gotmpl::Value::Int(*i),
        Yaml::Real(_) => yaml.as_f64().map_or(gotmpl::Value::Nil, gotmpl::Value::Float),
        Yaml::String(s) => super::value::string(s),
        Yaml::Boolean(b) => gotmpl::Value::Bool(*b),
        Yaml::Array(items) => super::value::list(items.iter().map(template_value).collect()),
        Yaml::Hash(entries) => super::value::map(
            entries
                .iter()
                .map(|(k, v)| (std::sync::Arc::from(key_text(k).as_str()), template_value(v)))
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => gotmpl::Value::Nil,
    }
}

fn key_text(key: &yaml_rust2::Yaml) -> String {
    use yaml_rust2::Yaml;
    match key {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => "<nil>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parse_yaml_gives_maps_lists_and_typed_scalars() {
        let text =
            "name: web\nport: 8080\nratio: 0.5\non: true\ntags:\n  - a\n  - b\nlimits: {cpu: 2}\nnone: ~\n";
        let value = parse(&[super::super::value::string(text)]).expect("yaml");
        assert_eq!(
            super::super::value::to_json(&value),
            json!({"name": "web", "port": 8080, "ratio": 0.5, "on": true, "tags": ["a", "b"], "limits": {"cpu": 2}, "none": null})
        );
        let empty = parse(&[super::super::value::string("")]).expect("empty");
        assert_eq!(super::super::value::to_json(&empty), json!({}));
        let err = parse(&[super::super::value::string("a: [1, 2")]).expect_err("unclosed");
        assert!(err.to_string().contains("parseYAML"), "{err}");
    }

    #[test]
    fn layout_of_yaml_v2() {
        let doc = json!({"minconns": "2", "admin": {"port": "1234", "hosts": ["a", "b"]}, "list": [{"x": 1, "y": true}],
                         "empty": {}, "word": "plain", "yes": "yes", "text": "a: b"});
        assert_eq!(
            emit(&doc),
            "admin:\n  hosts:\n  - a\n  - b\n  port: \"1234\"\nempty: {}\nlist:\n- x: 1\n  \"y\": true\nminconns: \"2\"\ntext: \"a: b\"\nword: plain\n\"yes\": \"yes\""
        );
        assert_eq!(emit(&json!("x")), "x");
    }
}
