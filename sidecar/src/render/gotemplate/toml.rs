//! `toTOML`: a map as TOML in the layout of the Go encoder consul-template uses (keys sorted,
//! plain keys before tables, a table's contents indented two spaces per level, arrays of maps as
//! `[[tables]]`). `null` values are left out, as that encoder does.

use serde_json::{Map, Value};

/// The TOML text, trimmed; the value must be a map.
pub fn emit(value: &Value) -> Result<String, String> {
    let Value::Object(root) = value else { return Err("only a map can be encoded".into()) };
    let mut out = String::new();
    table(&mut out, &[], root, 0)?;
    Ok(out.trim().to_string())
}

fn is_table(value: &Value) -> bool {
    value.is_object()
}

fn is_table_array(value: &Value) -> bool {
    matches!(value, Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object))
}

fn table(out: &mut String, path: &[String], map: &Map<String, Value>, depth: usize) -> Result<(), String> {
    let indent = "  ".repeat(depth);
    for (key, value) in map.iter().filter(|(_, v)| !v.is_null() && !is_table(v) && !is_table_array(v)) {
        out.push_str(&format!("{indent}{} = {}\n", key_text(key), inline(value)?));
    }
    for (key, value) in map.iter().filter(|(_, v)| is_table(v) || is_table_array(v)) {
        let mut child = path.to_vec();
        child.push(key_text(key));
        let header_indent = "  ".repeat(depth);
        match value {
            Value::Object(sub) => {
                out.push_str(&format!("\n{header_indent}[{}]\n", child.join(".")));
                table(out, &child, sub, depth + 1)?;
            }
            Value::Array(items) => {
                for item in items.iter().filter_map(Value::as_object) {
                    out.push_str(&format!("\n{header_indent}[[{}]]\n", child.join(".")));
                    table(out, &child, item, depth + 1)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn key_text(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_string() } else { quote(key) }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn inline(value: &Value) -> Result<String, String> {
    Ok(match value {
        Value::Null => return Err("null inside a list".into()),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.is_finite() { format!("{f:.1}") } else { f.to_string() }
        }
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect::<Result<_, _>>()?;
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| Ok(format!("{} = {}", key_text(k), inline(v)?)))
                .collect::<Result<_, String>>()?;
            format!("{{{}}}", fields.join(", "))
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn layout_of_the_go_encoder() {
        let doc = json!({"minconns": "2", "maxconns": "5", "admin": {"port": "1134", "deep": {"on": true}},
                         "servers": [{"name": "a"}, {"name": "b"}], "tags": ["x", "y"], "gone": null, "odd key": 1.5});
        assert_eq!(
            emit(&doc).expect("toml"),
            "maxconns = \"5\"\nminconns = \"2\"\n\"odd key\" = 1.5\ntags = [\"x\", \"y\"]\n\n[admin]\n  port = \"1134\"\n\n  [admin.deep]\n    on = true\n\n[[servers]]\n  name = \"a\"\n\n[[servers]]\n  name = \"b\""
        );
        assert!(emit(&json!("x")).is_err());
    }
}
