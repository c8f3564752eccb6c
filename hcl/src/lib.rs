//! The part of HCL that Consul's ACL rules and consul-template's config files use, read into
//! JSON: `key = value` attributes (strings with escapes, heredocs, numbers, booleans, lists,
//! `{ }` objects), nested blocks (`consul { ... }`), labelled blocks (`key_prefix "app/" { ... }`
//! becomes `{"key_prefix": {"app/": {...}}}`, the JSON form of the same rules), comments (`#`,
//! `//`, `/* */`). A key given twice becomes a list (several `template { }` blocks); blocks with
//! the same key and different labels share one object.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct HclError {
    pub line: usize,
    pub reason: String,
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

/// Reads a whole file as one object.
pub fn parse(text: &str) -> Result<Value, HclError> {
    let mut reader = Reader { text: text.as_bytes(), at: 0, line: 1 };
    let body = reader.body(false)?;
    Ok(Value::Object(body))
}

fn insert(body: &mut Map<String, Value>, key: String, value: Value) {
    match body.get_mut(&key) {
        None => {
            body.insert(key, value);
        }
        Some(Value::Array(items)) if value.is_object() && items.iter().all(Value::is_object) => {
            items.push(value)
        }
        Some(existing) => {
            let first = std::mem::take(existing);
            *existing = Value::Array(vec![first, value]);
        }
    }
}

impl Reader<'_> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, HclError> {
        Err(HclError { line: self.line, reason: reason.into() })
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips blanks, newlines, commas and comments.
    fn skip(&mut self) {
        while let Some(c) = self.peek() {
            let next = self.text.get(self.at + 1).copied();
            match (c, next) {
                (b' ' | b'\t' | b'\r' | b'\n' | b',', _) => {
                    self.bump();
                }
                (b'#', _) | (b'/', Some(b'/')) => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                }
                (b'/', Some(b'*')) => {
                    self.at += 2;
                    while self.peek().is_some() && !self.text[self.at..].starts_with(b"*/") {
                        self.bump();
                    }
                    self.at = (self.at + 2).min(self.text.len());
                }
                _ => return,
            }
        }
    }

    /// A bare word (names, numbers, booleans) or a quoted name.
    fn word(&mut self) -> Result<String, HclError> {
        if self.peek() == Some(b'"') {
            return self.string();
        }
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.') {
            self.bump();
        }
        if start == self.at {
            return self.fail(format!("expected a name, found {:?}", self.peek().map(char::from)));
        }
        Ok(String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
    }

    /// `key = value` and `key { ... }` up to `}` (when `nested`) or the end.
    fn body(&mut self, nested: bool) -> Result<Map<String, Value>, HclError> {
        let mut body = Map::new();
        loop {
            self.skip();
            match self.peek() {
                None if nested => return self.fail("unclosed block: expected }"),
                None => return Ok(body),
                Some(b'}') if nested => {
                    self.bump();
                    return Ok(body);
                }
                Some(_) => {}
            }
            let key = self.word()?;
            self.skip();
            let value = match self.peek() {
                Some(b'=' | b':') => {
                    self.bump();
                    self.skip();
                    self.value()?
                }
                Some(b'{') => {
                    self.bump();
                    Value::Object(self.body(true)?)
                }
                Some(b'"') => {
                    let label = self.string()?;
                    self.skip();
                    if self.peek() != Some(b'{') {
                        return self.fail(format!("after {key} {label:?}: expected {{"));
                    }
                    self.bump();
                    let block = Value::Object(self.body(true)?);
                    self.labelled(&mut body, key, label, block)?;
                    continue;
                }
                other => {
                    return self
                        .fail(format!("after {key:?}: expected = or {{, found {:?}", other.map(char::from)));
                }
            };
            insert(&mut body, key, value);
        }
    }

    /// `key "label" { ... }`: the block under `body[key][label]`.
    fn labelled(
        &self,
        body: &mut Map<String, Value>,
        key: String,
        label: String,
        block: Value,
    ) -> Result<(), HclError> {
        let entry = body.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(labels) = entry else {
            return self.fail(format!("{key} is both an attribute and a labelled block"));
        };
        if labels.contains_key(&label) {
            return self.fail(format!("{key} {label:?} is given twice"));
        }
        labels.insert(label, block);
        Ok(())
    }

    fn value(&mut self) -> Result<Value, HclError> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::String),
            Some(b'<') => self.heredoc().map(Value::String),
            Some(b'{') => {
                self.bump();
                Ok(Value::Object(self.body(true)?))
            }
            Some(b'[') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip();
                    match self.peek() {
                        Some(b']') => {
                            self.bump();
                            return Ok(Value::Array(items));
                        }
                        None => return self.fail("unclosed list: expected ]"),
                        Some(_) => items.push(self.value()?),
                    }
                }
            }
            _ => {
                let word = self.word()?;
                self.literal(&word)
            }
        }
    }

    /// `true`, `false`, an integer (octal with a leading 0, as file modes are written), a float.
    fn literal(&self, word: &str) -> Result<Value, HclError> {
        match word {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            w if w.len() > 1 && w.starts_with('0') && w.bytes().all(|b| b.is_ascii_digit()) => {
                u64::from_str_radix(w, 8)
                    .map(Value::from)
                    .or_else(|_| self.fail(format!("bad octal number {w:?}")))
            }
            w => match (w.parse::<i64>(), w.parse::<f64>().ok().and_then(serde_json::Number::from_f64)) {
                (Ok(n), _) => Ok(Value::from(n)),
                (_, Some(f)) => Ok(Value::Number(f)),
                _ => self.fail(format!("unexpected {w:?}: strings need quotes")),
            },
        }
    }

    fn string(&mut self) -> Result<String, HclError> {
        self.bump();
        let mut out = Vec::new();
        loop {
            if matches!(self.peek(), None | Some(b'\n')) {
                return self.fail("unterminated string");
            }
            match self.bump() {
                None => return self.fail("unterminated string"),
                Some(b'"') => return Ok(String::from_utf8_lossy(&out).into_owned()),
                Some(b'\\') => match self.bump() {
                    Some(b'n') => out.push(b'\n'),
                    Some(b't') => out.push(b'\t'),
                    Some(b'r') => out.push(b'\r'),
                    Some(c @ (b'"' | b'\\')) => out.push(c),
                    other => return self.fail(format!("unknown escape \\{:?}", other.map(char::from))),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// `<<MARK` … `MARK` (or `<<-MARK` with an indented end marker): the lines between.
    fn heredoc(&mut self) -> Result<String, HclError> {
        let rest = &self.text[self.at..];
        let Some(header_end) = rest.iter().position(|c| *c == b'\n') else {
            return self.fail("heredoc without a body");
        };
        let header = String::from_utf8_lossy(&rest[..header_end]).trim().to_string();
        let marker = header.trim_start_matches("<<").trim_start_matches('-').to_string();
        if marker.is_empty() {
            return self.fail("heredoc without an end marker");
        }
        for _ in 0..=header_end {
            self.bump();
        }
        let mut text = String::new();
        loop {
            let start = self.at;
            while self.peek().is_some_and(|c| c != b'\n') {
                self.bump();
            }
            let line = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
            let ended = self.bump().is_none();
            if line.trim() == marker {
                return Ok(text);
            }
            if ended {
                return self.fail(format!("heredoc not closed by {marker}"));
            }
            text.push_str(&line);
            text.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn consul_template_config_shapes() {
        let text = r#"
# consul-template's example config
consul {
  address = "127.0.0.1:8500"   // the agent
  token = "abc"
}
wait {
  min = "5s"
  max = "10s"
}
/* two templates */
template {
  source = "/etc/ct/nginx.ctmpl"
  destination = "/etc/nginx/conf.d/default.conf"
  command = ["nginx", "-s", "reload"]
  perms = 0644
  error_on_missing_key = true
}
template {
  source = "a.tpl"
  destination = "a.conf"
  contents = <<BODY
x {{ key "a" }}
BODY
}
max_stale = "10m"
"#;
        let doc = parse(text).expect("parses");
        assert_eq!(doc["consul"], json!({"address": "127.0.0.1:8500", "token": "abc"}));
        assert_eq!(doc["wait"]["max"], "10s");
        let templates = doc["template"].as_array().expect("two blocks, a list");
        assert_eq!(templates.len(), 2);
        assert_eq!(templates[0]["command"], json!(["nginx", "-s", "reload"]));
        assert_eq!(templates[0]["perms"], 420, "octal 0644");
        assert_eq!(templates[0]["error_on_missing_key"], true);
        assert_eq!(templates[1]["contents"], "x {{ key \"a\" }}\n");
        assert_eq!(doc["max_stale"], "10m");
    }

    #[test]
    fn labelled_blocks_read_as_the_json_form_of_acl_rules() {
        let text = r#"
key_prefix "" { policy = "read" }
key_prefix "app/" {
  policy = "write"
}
service "web" { policy = "write" intentions = "read" }
operator = "read"
"#;
        let doc = parse(text).expect("parses");
        assert_eq!(
            doc,
            json!({
                "key_prefix": {"": {"policy": "read"}, "app/": {"policy": "write"}},
                "service": {"web": {"policy": "write", "intentions": "read"}},
                "operator": "read",
            })
        );
        let twice =
            parse("key \"a\" { policy = \"read\" }\nkey \"a\" { policy = \"write\" }").expect_err("twice");
        assert_eq!(twice.line, 2, "{twice}");
        assert!(parse("key = \"x\"\nkey \"a\" { }").is_err(), "attribute and block");
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("consul {\n  address = \"x\n}\n").expect_err("unterminated");
        assert_eq!(err.line, 2, "{err}");
        assert!(parse("consul {\n address = 1\n").is_err(), "unclosed block");
        assert!(parse("= 3").is_err());
        assert!(parse("a = b").is_err(), "bare words are not strings");
    }
}
