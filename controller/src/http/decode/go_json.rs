//! Request bodies decoded the way Go's `encoding/json` decodes them for Consul.
//!
//! HashiCorp's Go client sends every field of its structs, `null` for empty slices and maps, and
//! fields census may not know. Go's decoder, and so Consul, reads such a body like this:
//! - an object key matches a struct field exactly, else without regard to case (Consul also
//!   translates snake_case keys, so `_` and `-` are ignored here too);
//! - a key that matches no field is ignored;
//! - `null` leaves a field at its zero value (an empty string, 0, false, an empty list or map);
//! - a value of the wrong JSON type is an error naming the field (`cannot unmarshal string into
//!   Go struct field AgentServiceRegistration.Port of type uint16`).
//!
//! [`GoValue`] is a serde `Deserializer` over a parsed `serde_json::Value` that applies these
//! rules. serde hands `deserialize_struct` the names (and aliases) of the target's fields, so the
//! matching is per struct, not a global list. Target structs must be `#[serde(default)]`, as every
//! wire type is: a field left out or `null` takes its default.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body did not decode: Go's wording where Go has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoJsonError {
    message: String,
    /// The message names the field already.
    located: bool,
}

impl GoJsonError {
    fn located(message: String) -> Self {
        GoJsonError { message, located: true }
    }
}

impl fmt::Display for GoJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GoJsonError {}

impl de::Error for GoJsonError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        GoJsonError { message: msg.to_string(), located: false }
    }
}

/// Decodes `value` into `T` with Go's rules.
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, GoJsonError> {
    T::deserialize(GoValue { value, path: Path::default() })
}

/// Where in the body a value sits: the outermost struct's name and the field names below it.
#[derive(Debug, Clone, Default)]
struct Path {
    root: Option<&'static str>,
    fields: Vec<String>,
}

impl Path {
    fn field(&self, name: &str) -> Path {
        let mut fields = self.fields.clone();
        fields.push(name.to_string());
        Path { root: self.root, fields }
    }

    fn rooted(&self, name: &'static str) -> Path {
        Path { root: self.root.or(Some(name)), fields: self.fields.clone() }
    }

    /// Go's "Go struct field X.Y" or "Go value".
    fn describe(&self) -> String {
        match (self.root, self.fields.is_empty()) {
            (Some(root), false) => format!("Go struct field {root}.{}", self.fields.join(".")),
            _ => "Go value".to_string(),
        }
    }
}

fn json_kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// A JSON value being decoded, and where it sits.
pub struct GoValue {
    value: Value,
    path: Path,
}

impl GoValue {
    fn mismatch(&self, go_type: &str) -> GoJsonError {
        GoJsonError::located(format!(
            "json: cannot unmarshal {} into {} of type {go_type}",
            json_kind(&self.value),
            self.path.describe()
        ))
    }

    fn unsigned(&self, go_type: &str, max: u64) -> Result<u64, GoJsonError> {
        match &self.value {
            Value::Null => Ok(0),
            Value::Number(n) => n.as_u64().filter(|v| *v <= max).ok_or_else(|| self.mismatch(go_type)),
            _ => Err(self.mismatch(go_type)),
        }
    }

    fn signed(&self, go_type: &str, min: i64, max: i64) -> Result<i64, GoJsonError> {
        match &self.value {
            Value::Null => Ok(0),
            Value::Number(n) => {
                n.as_i64().filter(|v| (min..=max).contains(v)).ok_or_else(|| self.mismatch(go_type))
            }
            _ => Err(self.mismatch(go_type)),
        }
    }

    fn float(&self) -> Result<f64, GoJsonError> {
        match &self.value {
            Value::Null => Ok(0.0),
            Value::Number(n) => n.as_f64().ok_or_else(|| self.mismatch("float64")),
            _ => Err(self.mismatch("float64")),
        }
    }
}

/// Logs each ignored field name once per process, at debug.
fn note_ignored(root: Option<&str>, key: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let name = format!("{}.{key}", root.unwrap_or("body"));
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if seen.insert(name.clone()) {
        tracing::debug!(field = %name, "request body field ignored (census does not use it), as Consul ignores unknown fields");
    }
}

/// Lower case, without `_` and `-`: how a key is compared with a field name when it is not exact.
fn fold(name: &str) -> String {
    name.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// Renames the keys of `map` to the field names of the target struct; drops `null`s and keys that
/// match no field. A later key for the same field replaces an earlier one, as in Go.
fn match_fields(
    map: Map<String, Value>,
    fields: &'static [&'static str],
    root: Option<&str>,
) -> Vec<(&'static str, Value)> {
    let mut out: Vec<(&'static str, Value)> = Vec::with_capacity(map.len());
    for (key, value) in map {
        let field = fields.iter().copied().find(|f| *f == key).or_else(|| {
            let folded = fold(&key);
            fields.iter().copied().find(|f| fold(f) == folded)
        });
        let Some(field) = field else {
            note_ignored(root, &key);
            continue;
        };
        out.retain(|(f, _)| *f != field);
        if !value.is_null() {
            out.push((field, value));
        }
    }
    out
}

struct Fields {
    entries: std::vec::IntoIter<(&'static str, Value)>,
    pending: Option<(&'static str, Value)>,
    path: Path,
}

impl<'de> MapAccess<'de> for Fields {
    type Error = GoJsonError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((name, value)) = self.entries.next() else { return Ok(None) };
        self.pending = Some((name, value));
        seed.deserialize(name.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let (name, value) = self.pending.take().ok_or_else(|| de::Error::custom("a value before its key"))?;
        let path = self.path.field(name);
        seed.deserialize(GoValue { value, path: path.clone() }).map_err(|e| within(e, &path))
    }
}

/// Names the field in an error raised by a type's own `Deserialize` (a duration, say).
fn within(error: GoJsonError, path: &Path) -> GoJsonError {
    if error.located {
        error
    } else {
        GoJsonError::located(format!("{}: {}", path.fields.join("."), error.message))
    }
}

/// A JSON object read as a map (user keys such as `Meta`'s, kept as sent).
struct Entries {
    entries: serde_json::map::IntoIter,
    pending: Option<Value>,
    path: Path,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = GoJsonError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.pending = Some(value);
        seed.deserialize(GoValue { value: Value::String(key), path: self.path.clone() }).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let value = self.pending.take().ok_or_else(|| de::Error::custom("a value before its key"))?;
        seed.deserialize(GoValue { value, path: self.path.clone() })
    }
}

struct Items {
    items: std::vec::IntoIter<Value>,
    path: Path,
}

impl<'de> SeqAccess<'de> for Items {
    type Error = GoJsonError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.items.next() {
            None => Ok(None),
            Some(value) => seed.deserialize(GoValue { value, path: self.path.clone() }).map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

fn any_number<'de, V: Visitor<'de>>(n: &Number, visitor: V) -> Result<V::Value, GoJsonError> {
    if let Some(u) = n.as_u64() {
        visitor.visit_u64(u)
    } else if let Some(i) = n.as_i64() {
        visitor.visit_i64(i)
    } else {
        visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
    }
}

macro_rules! unsigned {
    ($method:ident, $visit:ident, $ty:ty, $go:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            let v = self.unsigned($go, <$ty>::MAX as u64)?;
            visitor.$visit(v as $ty)
        }
    };
}

macro_rules! signed {
    ($method:ident, $visit:ident, $ty:ty, $go:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            let v = self.signed($go, <$ty>::MIN as i64, <$ty>::MAX as i64)?;
            visitor.$visit(v as $ty)
        }
    };
}

impl<'de> de::Deserializer<'de> for GoValue {
    type Error = GoJsonError;

    /// Self-describing targets (`serde_json::Value`, untagged enums) get the value as it is.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => any_number(&n, visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(Items { items: items.into_iter(), path: self.path }),
            Value::Object(map) => {
                visitor.visit_map(Entries { entries: map.into_iter(), pending: None, path: self.path })
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_bool(false),
            Value::Bool(b) => visitor.visit_bool(b),
            _ => Err(self.mismatch("bool")),
        }
    }

    unsigned!(deserialize_u8, visit_u8, u8, "uint8");
    unsigned!(deserialize_u16, visit_u16, u16, "uint16");
    unsigned!(deserialize_u32, visit_u32, u32, "uint32");
    unsigned!(deserialize_u64, visit_u64, u64, "uint64");
    signed!(deserialize_i8, visit_i8, i8, "int8");
    signed!(deserialize_i16, visit_i16, i16, "int16");
    signed!(deserialize_i32, visit_i32, i32, "int32");
    signed!(deserialize_i64, visit_i64, i64, "int64");

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_f32(self.float()? as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_f64(self.float()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_str(""),
            Value::String(s) => visitor.visit_string(s),
            _ => Err(self.mismatch("string")),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_seq(Items { items: Vec::new().into_iter(), path: self.path }),
            Value::Array(items) => visitor.visit_seq(Items { items: items.into_iter(), path: self.path }),
            _ => Err(self.mismatch("array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => {
                visitor.visit_map(Entries { entries: Map::new().into_iter(), pending: None, path: self.path })
            }
            Value::Object(map) => {
                visitor.visit_map(Entries { entries: map.into_iter(), pending: None, path: self.path })
            }
            _ => Err(self.mismatch("map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let path = self.path.rooted(name);
        let map = match self.value {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            other => return Err(GoValue { value: other, path }.mismatch(name)),
        };
        let entries = match_fields(map, fields, path.root);
        visitor.visit_map(Fields { entries: entries.into_iter(), pending: None, path })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.value.deserialize_enum(name, variants, visitor).map_err(de::Error::custom)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }
}
