//! ACL records read from the catalog's documents, and the writes that store them.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::records::{AuthMethod, BindingRule, Policy, Role, Token};
use crate::catalog::{CatalogState, Command, DocKind, DocWrite, Document};

/// Key of the bootstrap marker among `DocKind::AclMeta` documents.
pub const BOOTSTRAP_KEY: &str = "bootstrap";

/// A record with the indexes its document carries.
pub trait Stored: DeserializeOwned + Serialize {
    const KIND: DocKind;
    fn set_indexes(&mut self, create: u64, modify: u64);
    fn modify_index(&self) -> u64;
    /// Its key among the documents, and the name no other record of its kind may carry.
    fn key_and_unique_name(&self) -> (String, String);
}

macro_rules! stored {
    ($ty:ty, $kind:expr, |$r:ident| $key:expr, $unique:expr) => {
        impl Stored for $ty {
            const KIND: DocKind = $kind;
            fn set_indexes(&mut self, create: u64, modify: u64) {
                self.create_index = create;
                self.modify_index = modify;
            }
            fn modify_index(&self) -> u64 {
                self.modify_index
            }
            fn key_and_unique_name(&self) -> (String, String) {
                let $r = self;
                ($key, $unique)
            }
        }
    };
}

stored!(Token, DocKind::AclToken, |t| t.accessor_id.clone(), t.secret_id.clone());
stored!(Policy, DocKind::AclPolicy, |p| p.id.clone(), p.name.clone());
stored!(Role, DocKind::AclRole, |r| r.id.clone(), r.name.clone());
stored!(AuthMethod, DocKind::AclAuthMethod, |m| m.name.clone(), String::new());
stored!(BindingRule, DocKind::AclBindingRule, |b| b.id.clone(), String::new());

fn decode<T: Stored>(doc: &Document) -> Option<T> {
    let mut record: T = serde_json::from_str(&doc.body).ok()?;
    record.set_indexes(doc.create_index, doc.modify_index);
    Some(record)
}

pub fn get<T: Stored>(s: &CatalogState, key: &str) -> Option<T> {
    s.document(T::KIND, key).and_then(decode)
}

pub fn all<T: Stored>(s: &CatalogState) -> Vec<T> {
    s.documents(T::KIND, "").filter_map(decode).collect()
}

pub fn by_name<T: Stored>(s: &CatalogState, name: &str) -> Option<T> {
    s.documents(T::KIND, "").find(|d| d.unique_name == name).and_then(decode)
}

/// The write that stores `record` (`cas`: as `DocWrite::cas`).
pub fn put<T: Stored>(record: &T, cas: Option<u64>) -> Command {
    let (key, unique_name) = record.key_and_unique_name();
    let mut body = serde_json::to_value(record).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.remove("CreateIndex");
        map.remove("ModifyIndex");
    }
    Command::DocSet(DocWrite { kind: T::KIND, key, unique_name, body: body.to_string(), cas })
}

pub fn delete<T: Stored>(key: &str) -> Command {
    Command::DocDelete { kind: T::KIND, key: key.to_string(), cas: None }
}

/// The index at which ACLs were bootstrapped, if they were.
pub fn bootstrapped(s: &CatalogState) -> Option<u64> {
    s.document(DocKind::AclMeta, BOOTSTRAP_KEY).map(|d| d.modify_index)
}

/// Marks the ACL system bootstrapped; refused (`false`) when it already is, unless `reset` is
/// the index it was marked at (an operator's `acl-bootstrap-reset`: the bootstrap may happen
/// again, once, and the mark moves to the new index).
pub fn mark_bootstrapped(reset: Option<u64>) -> Command {
    Command::DocSet(DocWrite {
        kind: DocKind::AclMeta,
        key: BOOTSTRAP_KEY.into(),
        unique_name: String::new(),
        body: "{}".into(),
        cas: Some(reset.unwrap_or(0)),
    })
}
