//! Documents: records the catalog stores, versions and lists but does not interpret: Consul's
//! config entries, prepared queries, network coordinates, the autopilot configuration and the ACL
//! records (tokens, policies, roles, auth methods, binding rules). Each is
//! a JSON body under a key, with Consul's CreateIndex/ModifyIndex and check-and-set writes; the
//! HTTP layer gives the body its meaning.

use serde::{Deserialize, Serialize};

use super::command::CommandResult;
use super::state::{CatalogState, Changes, Table};

/// Which collection a document belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocKind {
    /// `/v1/config`: keyed `kind/name`.
    ConfigEntry,
    /// `/v1/query`: keyed by ID, names unique.
    PreparedQuery,
    /// `/v1/coordinate`: keyed by node name.
    Coordinate,
    /// `/v1/operator/autopilot/configuration`: one document.
    Autopilot,
    /// `/v1/acl/token`: keyed by AccessorID; the SecretID is the unique name.
    AclToken,
    /// `/v1/acl/policy`: keyed by ID, names unique.
    AclPolicy,
    /// `/v1/acl/role`: keyed by ID, names unique.
    AclRole,
    /// `/v1/acl/auth-method`: keyed by name.
    AclAuthMethod,
    /// `/v1/acl/binding-rule`: keyed by ID.
    AclBindingRule,
    /// The ACL system's own facts (`bootstrap`: written once, by the first bootstrap).
    AclMeta,
}

impl DocKind {
    /// The table a blocking read of this collection waits on.
    pub fn table(self) -> Table {
        match self {
            DocKind::ConfigEntry => Table::ConfigEntries,
            DocKind::PreparedQuery => Table::PreparedQueries,
            DocKind::Coordinate => Table::Coordinates,
            // ACL records share the autopilot slot: a slot of their own would change the
            // snapshot format (the table indexes are a fixed array); both change rarely.
            DocKind::Autopilot
            | DocKind::AclToken
            | DocKind::AclPolicy
            | DocKind::AclRole
            | DocKind::AclAuthMethod
            | DocKind::AclBindingRule
            | DocKind::AclMeta => Table::Autopilot,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub key: String,
    /// A name no other document of the collection may carry (a prepared query's), or empty.
    pub unique_name: String,
    /// JSON, as the HTTP layer wrote it.
    pub body: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// One document write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocWrite {
    pub kind: DocKind,
    pub key: String,
    pub unique_name: String,
    pub body: String,
    /// `Some(0)`: only if absent; `Some(n)`: only if its ModifyIndex is `n`.
    pub cas: Option<u64>,
}

fn cas_holds(existing: Option<&Document>, cas: Option<u64>) -> bool {
    match (cas, existing) {
        (None, _) => true,
        (Some(0), found) => found.is_none(),
        (Some(n), Some(doc)) => doc.modify_index == n,
        (Some(_), None) => false,
    }
}

impl CatalogState {
    pub fn document(&self, kind: DocKind, key: &str) -> Option<&Document> {
        self.documents.get(&(kind, key.to_string()))
    }

    /// The documents of a collection whose key starts with `prefix`, in key order.
    pub fn documents<'a>(
        &'a self,
        kind: DocKind,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a Document> + 'a {
        self.documents
            .range((kind, prefix.to_string())..)
            .take_while(move |((k, key), _)| *k == kind && key.starts_with(prefix))
            .map(|(_, doc)| doc)
    }

    /// Writes a document; `false` when the check-and-set does not hold, refused when another
    /// document of the collection has the same unique name.
    pub(crate) fn doc_set(&mut self, index: u64, write: &DocWrite, changes: &mut Changes) -> CommandResult {
        let id = (write.kind, write.key.clone());
        let existing = self.documents.get(&id);
        if !cas_holds(existing, write.cas) {
            return CommandResult::Bool(false);
        }
        if !write.unique_name.is_empty()
            && self
                .documents(write.kind, "")
                .any(|d| d.unique_name == write.unique_name && d.key != write.key)
        {
            return CommandResult::Rejected(format!("name {:?} is already in use", write.unique_name));
        }
        let create_index = existing.map_or(index, |d| d.create_index);
        let doc = Document {
            key: write.key.clone(),
            unique_name: write.unique_name.clone(),
            body: write.body.clone(),
            create_index,
            modify_index: index,
        };
        self.documents.insert(id, doc);
        self.bump(changes, write.kind.table(), index);
        CommandResult::Bool(true)
    }

    pub(crate) fn doc_delete(
        &mut self,
        index: u64,
        kind: DocKind,
        key: &str,
        cas: Option<u64>,
        changes: &mut Changes,
    ) -> CommandResult {
        let id = (kind, key.to_string());
        let existing = self.documents.get(&id);
        if cas.is_some_and(|n| existing.is_none_or(|d| d.modify_index != n)) {
            return CommandResult::Bool(false);
        }
        if self.documents.remove(&id).is_some() {
            self.bump(changes, kind.table(), index);
        }
        CommandResult::Bool(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Command;

    fn set(key: &str, name: &str, body: &str, cas: Option<u64>) -> Command {
        Command::DocSet(DocWrite {
            kind: DocKind::PreparedQuery,
            key: key.into(),
            unique_name: name.into(),
            body: body.into(),
            cas,
        })
    }

    #[test]
    fn writes_honour_check_and_set_and_unique_names() {
        let mut state = CatalogState::default();
        assert_eq!(state.apply(5, &set("a", "web", "{}", Some(0))).0, CommandResult::Bool(true));
        assert_eq!(state.apply(6, &set("a", "web", "{\"x\":1}", Some(0))).0, CommandResult::Bool(false));
        assert_eq!(state.apply(7, &set("a", "web", "{\"x\":1}", Some(4))).0, CommandResult::Bool(false));
        assert_eq!(state.apply(8, &set("a", "web", "{\"x\":1}", Some(5))).0, CommandResult::Bool(true));
        let doc = state.document(DocKind::PreparedQuery, "a").expect("stored");
        assert_eq!((doc.create_index, doc.modify_index, doc.body.as_str()), (5, 8, "{\"x\":1}"));
        assert!(matches!(state.apply(9, &set("b", "web", "{}", None)).0, CommandResult::Rejected(_)));
        assert_eq!(state.table_index(Table::PreparedQueries), 8, "a refused write moves no index");

        let delete = |cas| Command::DocDelete { kind: DocKind::PreparedQuery, key: "a".into(), cas };
        assert_eq!(state.apply(10, &delete(Some(5))).0, CommandResult::Bool(false));
        assert!(state.document(DocKind::PreparedQuery, "a").is_some());
        assert_eq!(state.apply(11, &delete(Some(8))).0, CommandResult::Bool(true));
        assert!(state.document(DocKind::PreparedQuery, "a").is_none());
        assert_eq!(state.table_index(Table::PreparedQueries), 11);
    }

    #[test]
    fn listing_is_by_collection_and_prefix() {
        let mut state = CatalogState::default();
        let entry = |key: &str| {
            Command::DocSet(DocWrite {
                kind: DocKind::ConfigEntry,
                key: key.into(),
                unique_name: String::new(),
                body: "{}".into(),
                cas: None,
            })
        };
        state.apply(1, &entry("service-defaults/web"));
        state.apply(2, &entry("service-defaults/api"));
        state.apply(3, &entry("proxy-defaults/global"));
        let keys: Vec<&str> =
            state.documents(DocKind::ConfigEntry, "service-defaults/").map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["service-defaults/api", "service-defaults/web"]);
        assert_eq!(state.documents(DocKind::Coordinate, "").count(), 0);
    }
}
