//! Catalog JSON as Go template values and back, and reading a function's arguments the way Go's
//! template engine converts them (a string parameter takes only a string, and so on).

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{TemplateError, Value};

/// A function's failure; the caller adds the template position.
pub fn fail(message: impl Into<String>) -> TemplateError {
    TemplateError::Exec(message.into())
}

/// JSON as Go sees a decoded `interface{}`: objects are maps (keys sorted, as Go ranges them),
/// integers stay integers.
pub fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(Arc::from(s.as_str())),
        serde_json::Value::Array(items) => Value::List(items.iter().map(from_json).collect()),
        serde_json::Value::Object(fields) => {
            Value::Map(Arc::new(fields.iter().map(|(k, v)| (Arc::from(k.as_str()), from_json(v))).collect()))
        }
    }
}

/// A template value as JSON (`toJSON`, `toYAML`); functions become `null`.
pub fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Uint(u) => serde_json::Value::from(*u),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::List(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Map(fields) => {
            serde_json::Value::Object(fields.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect())
        }
    }
}

pub fn string(s: impl AsRef<str>) -> Value {
    Value::String(Arc::from(s.as_ref()))
}

pub fn list(items: Vec<Value>) -> Value {
    Value::List(Arc::from(items))
}

pub fn map(entries: BTreeMap<Arc<str>, Value>) -> Value {
    Value::Map(Arc::new(entries))
}

/// The field `name` of a map value (a catalog record).
pub fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Map(fields) => fields.get(name),
        _ => None,
    }
}

/// Go's type names, for errors that read like Go's.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        Value::Function(_) => "func",
    }
}

/// The arguments of one call of function `name`.
pub struct Args<'a> {
    pub name: &'static str,
    pub values: &'a [Value],
}

impl<'a> Args<'a> {
    /// Checks the count: between `min` and `max` arguments.
    pub fn new(
        name: &'static str,
        values: &'a [Value],
        min: usize,
        max: usize,
    ) -> Result<Self, TemplateError> {
        if values.len() < min || values.len() > max {
            let want = if min == max { min.to_string() } else { format!("{min} to {max}") };
            return Err(fail(format!("wrong number of args for {name}: want {want} got {}", values.len())));
        }
        Ok(Args { name, values })
    }

    pub fn count(&self) -> usize {
        self.values.len()
    }

    pub fn value(&self, i: usize) -> &'a Value {
        &self.values[i.min(self.values.len().saturating_sub(1))]
    }

    fn wrong(&self, i: usize, want: &str) -> TemplateError {
        fail(format!("{}: argument {} has type {}; want {want}", self.name, i + 1, type_name(self.value(i))))
    }

    pub fn str(&self, i: usize) -> Result<&'a str, TemplateError> {
        match self.value(i) {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong(i, "string")),
        }
    }

    /// An integer argument; also a float without fraction, as Go's untyped constants convert.
    pub fn int(&self, i: usize) -> Result<i64, TemplateError> {
        match self.value(i) {
            Value::Int(n) => Ok(*n),
            Value::Uint(n) => i64::try_from(*n).map_err(|_| self.wrong(i, "int")),
            Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
            _ => Err(self.wrong(i, "int")),
        }
    }

    pub fn list(&self, i: usize) -> Result<&'a [Value], TemplateError> {
        match self.value(i) {
            Value::List(items) => Ok(items),
            Value::Nil => Ok(&[]),
            _ => Err(self.wrong(i, "a list")),
        }
    }

    /// A list of strings (`join`'s `[]string`).
    pub fn strings(&self, i: usize) -> Result<Vec<&'a str>, TemplateError> {
        self.list(i)?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(&**s),
                _ => Err(self.wrong(i, "[]string")),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_round_trips_through_template_values() {
        let doc = json!({"b": [1, -2, 2.5, "x", null, true], "a": {"n": 18446744073709551615u64}});
        assert_eq!(to_json(&from_json(&doc)), doc);
        let Value::Map(m) = from_json(&doc) else { panic!("object becomes a map") };
        assert_eq!(m.keys().map(|k| k.to_string()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn arguments_are_checked_like_go_converts_them() {
        let values = [string("x"), Value::Int(3), Value::Float(2.0), list(vec![string("a")])];
        let args = Args::new("f", &values, 1, 4).expect("count");
        assert_eq!(args.str(0).expect("string"), "x");
        assert_eq!((args.int(1).expect("int"), args.int(2).expect("whole float")), (3, 2));
        assert_eq!(args.strings(3).expect("strings"), ["a"]);
        assert!(args.str(1).expect_err("int is no string").to_string().contains("want string"));
        assert!(Args::new("f", &values, 1, 2).is_err());
    }
}
