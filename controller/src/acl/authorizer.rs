//! What a token may do: its policies' rules merged into one table per resource, looked up as
//! Consul does (an exact rule before any prefix rule, the longest prefix first), with the
//! agent's default policy for what no rule covers.

use std::collections::HashMap;

use super::rules::{Access, Resource, Rule};

/// `acl.default_policy`: what a token may do where none of its rules speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultPolicy {
    #[default]
    Allow,
    Deny,
}

#[derive(Debug, Default, Clone)]
struct Segments {
    exact: HashMap<String, Access>,
    /// Longest first.
    prefixes: Vec<(String, Access)>,
}

impl Segments {
    fn lookup(&self, name: &str) -> Option<Access> {
        if let Some(access) = self.exact.get(name) {
            return Some(*access);
        }
        self.prefixes.iter().find(|(p, _)| name.starts_with(p.as_str())).map(|(_, a)| *a)
    }
}

#[derive(Debug, Clone)]
pub struct Authorizer {
    management: bool,
    default: DefaultPolicy,
    tables: HashMap<Resource, Segments>,
}

impl Authorizer {
    /// The global-management policy: everything.
    pub fn management() -> Authorizer {
        Authorizer { management: true, default: DefaultPolicy::Allow, tables: HashMap::new() }
    }

    /// The rules of every policy a token carries, merged: for one segment given twice, deny
    /// wins, then write, list and read.
    pub fn from_rules(rules: impl IntoIterator<Item = Rule>, default: DefaultPolicy) -> Authorizer {
        let mut exact: HashMap<Resource, HashMap<String, Access>> = HashMap::new();
        let mut prefixes: HashMap<Resource, HashMap<String, Access>> = HashMap::new();
        for rule in rules {
            let table = if rule.prefix { &mut prefixes } else { &mut exact };
            table
                .entry(rule.resource)
                .or_default()
                .entry(rule.segment)
                .and_modify(|a| *a = a.stronger(rule.access))
                .or_insert(rule.access);
        }
        let mut tables: HashMap<Resource, Segments> = HashMap::new();
        for (resource, segments) in exact {
            tables.entry(resource).or_default().exact = segments;
        }
        for (resource, segments) in prefixes {
            let mut list: Vec<(String, Access)> = segments.into_iter().collect();
            list.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
            tables.entry(resource).or_default().prefixes = list;
        }
        Authorizer { management: false, default, tables }
    }

    pub fn is_management(&self) -> bool {
        self.management
    }

    /// Whether `need` on `name` of `resource` is granted (`name` is ignored for global resources).
    pub fn allows(&self, resource: Resource, name: &str, need: Access) -> bool {
        if self.management {
            return true;
        }
        let name = if resource.is_global() { "" } else { name };
        match self.tables.get(&resource).and_then(|s| s.lookup(name)) {
            Some(granted) => granted != Access::Deny && granted >= need,
            // Managing ACLs is never a default: only a rule (or management) grants it.
            None => resource != Resource::Acl && self.default == DefaultPolicy::Allow,
        }
    }

    /// Whether `need` holds on `prefix` and on everything under it: no rule below the prefix takes
    /// it away (Consul's `KeyWritePrefix`, for deleting a tree).
    pub fn allows_all_under(&self, resource: Resource, prefix: &str, need: Access) -> bool {
        if self.management {
            return true;
        }
        if !self.allows(resource, prefix, need) {
            return false;
        }
        let Some(segments) = self.tables.get(&resource) else { return true };
        let grants = |a: &Access| *a != Access::Deny && *a >= need;
        segments.exact.iter().filter(|(s, _)| s.starts_with(prefix)).all(|(_, a)| grants(a))
            && segments.prefixes.iter().filter(|(s, _)| s.starts_with(prefix)).all(|(_, a)| grants(a))
    }

    /// Whether any rule grants at least `need` somewhere under `prefix` (so a listing under it
    /// can show something); the default policy counts when it allows.
    pub fn allows_some_under(&self, resource: Resource, prefix: &str, need: Access) -> bool {
        if self.allows(resource, prefix, need) {
            return true;
        }
        let Some(segments) = self.tables.get(&resource) else { return false };
        let grants = |a: &Access| *a != Access::Deny && *a >= need;
        segments.exact.iter().any(|(s, a)| s.starts_with(prefix) && grants(a))
            || segments.prefixes.iter().any(|(s, a)| s.starts_with(prefix) && grants(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::rules::parse;

    fn authorizer(text: &str, default: DefaultPolicy) -> Authorizer {
        Authorizer::from_rules(parse(text).expect("rules"), default)
    }

    #[test]
    fn exact_beats_prefix_and_the_longest_prefix_wins() {
        let a = authorizer(
            r#"key_prefix "" { policy = "read" }
               key_prefix "app/" { policy = "write" }
               key_prefix "app/secret/" { policy = "deny" }
               key "app/secret/open" { policy = "read" }"#,
            DefaultPolicy::Deny,
        );
        assert!(a.allows(Resource::Key, "other", Access::Read));
        assert!(!a.allows(Resource::Key, "other", Access::Write));
        assert!(a.allows(Resource::Key, "app/x", Access::Write));
        assert!(!a.allows(Resource::Key, "app/secret/x", Access::Read));
        assert!(a.allows(Resource::Key, "app/secret/open", Access::Read));
        assert!(!a.allows(Resource::Key, "app/secret/open", Access::Write));
        assert!(!a.allows(Resource::Service, "web", Access::Read), "no rule, default deny");
    }

    #[test]
    fn merged_policies_prefer_deny_then_write() {
        let mut rules = parse(r#"service "web" { policy = "read" }"#).expect("a");
        rules.extend(parse(r#"service "web" { policy = "write" }"#).expect("b"));
        let a = Authorizer::from_rules(rules.clone(), DefaultPolicy::Deny);
        assert!(a.allows(Resource::Service, "web", Access::Write));
        rules.extend(parse(r#"service "web" { policy = "deny" }"#).expect("c"));
        let a = Authorizer::from_rules(rules, DefaultPolicy::Allow);
        assert!(!a.allows(Resource::Service, "web", Access::Read));
    }

    #[test]
    fn default_allow_never_grants_acl_management() {
        let a = authorizer("", DefaultPolicy::Allow);
        assert!(a.allows(Resource::Key, "x", Access::Write));
        assert!(a.allows(Resource::Operator, "", Access::Write));
        assert!(!a.allows(Resource::Acl, "", Access::Read));
        assert!(authorizer(r#"acl = "read""#, DefaultPolicy::Deny).allows(Resource::Acl, "", Access::Read));
        assert!(Authorizer::management().allows(Resource::Acl, "", Access::Write));
    }

    #[test]
    fn list_sits_between_read_and_write() {
        let a = authorizer(
            r#"key_prefix "l/" { policy = "list" } key_prefix "r/" { policy = "read" }"#,
            DefaultPolicy::Deny,
        );
        assert!(a.allows(Resource::Key, "l/a", Access::List));
        assert!(a.allows(Resource::Key, "l/a", Access::Read));
        assert!(!a.allows(Resource::Key, "l/a", Access::Write));
        assert!(!a.allows(Resource::Key, "r/a", Access::List));
        assert!(a.allows_some_under(Resource::Key, "", Access::Read));
        let w = authorizer(
            r#"key_prefix "a/" { policy = "write" } key "a/locked" { policy = "read" }"#,
            DefaultPolicy::Deny,
        );
        assert!(w.allows_all_under(Resource::Key, "a/b/", Access::Write));
        assert!(!w.allows_all_under(Resource::Key, "a/", Access::Write), "a/locked is read-only");
        assert!(!a.allows_some_under(Resource::Service, "", Access::Read));
    }
}
