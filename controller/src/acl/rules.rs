//! Consul's ACL rules language: the HCL form (`key_prefix "app/" { policy = "read" }`,
//! `operator = "read"`) and the JSON form (`{"key_prefix": {"app/": {"policy": "read"}}}`) read
//! into one list of rules. Unknown resources and access levels are errors, as a typo that
//! silently granted or removed nothing would be worse than a refused policy.

use serde_json::Value;

/// What a rule grants. Ordered: a grant satisfies every need at or below it (`write` includes
/// `list` and `read`; `list` includes `read`); `deny` satisfies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Deny,
    Read,
    List,
    Write,
}

impl Access {
    fn parse(text: &str) -> Option<Access> {
        match text {
            "deny" => Some(Access::Deny),
            "read" => Some(Access::Read),
            "list" => Some(Access::List),
            "write" => Some(Access::Write),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Deny => "deny",
            Access::Read => "read",
            Access::List => "list",
            Access::Write => "write",
        }
    }

    /// When two policies give the same segment different levels: deny, then write, list, read.
    pub fn stronger(self, other: Access) -> Access {
        let rank = |a: Access| match a {
            Access::Deny => 3,
            Access::Write => 2,
            Access::List => 1,
            Access::Read => 0,
        };
        if rank(other) > rank(self) { other } else { self }
    }
}

/// What a rule is about, as Consul's permission strings name it (`key:write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Acl,
    Agent,
    Event,
    Identity,
    Key,
    Keyring,
    Mesh,
    Node,
    Operator,
    Peering,
    Query,
    Service,
    Session,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Acl => "acl",
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Identity => "identity",
            Resource::Key => "key",
            Resource::Keyring => "keyring",
            Resource::Mesh => "mesh",
            Resource::Node => "node",
            Resource::Operator => "operator",
            Resource::Peering => "peering",
            Resource::Query => "query",
            Resource::Service => "service",
            Resource::Session => "session",
        }
    }

    /// Resources with one level for the whole cluster (`operator = "read"`), no names.
    pub fn is_global(self) -> bool {
        matches!(
            self,
            Resource::Acl | Resource::Keyring | Resource::Mesh | Resource::Operator | Resource::Peering
        )
    }

    const NAMED: [Resource; 8] = [
        Resource::Agent,
        Resource::Event,
        Resource::Identity,
        Resource::Key,
        Resource::Node,
        Resource::Query,
        Resource::Service,
        Resource::Session,
    ];
    const GLOBAL: [Resource; 5] =
        [Resource::Acl, Resource::Keyring, Resource::Mesh, Resource::Operator, Resource::Peering];
}

/// One rule: `key_prefix "app/" { policy = "read" }` is `{Key, "app/", prefix, Read}`; a global
/// resource's rule has an empty prefix segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub resource: Resource,
    pub segment: String,
    pub prefix: bool,
    pub access: Access,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("Failed to parse ACL rules: {0}")]
    Syntax(String),
    #[error("Failed to parse ACL rules: unknown resource {0:?}")]
    UnknownResource(String),
    #[error("Invalid {resource} policy: {value:?}")]
    BadAccess { resource: String, value: String },
    #[error("Failed to parse ACL rules: {0} must be an object of segments, each with a policy")]
    Shape(String),
}

/// Reads rules written in HCL or JSON; empty text is no rules.
pub fn parse(text: &str) -> Result<Vec<Rule>, RulesError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let doc = if trimmed.starts_with('{') {
        serde_json::from_str::<Value>(trimmed).map_err(|e| RulesError::Syntax(e.to_string()))?
    } else {
        census_hcl::parse(trimmed).map_err(|e| RulesError::Syntax(e.to_string()))?
    };
    let Value::Object(top) = doc else {
        return Err(RulesError::Syntax("expected an object of rules".into()));
    };
    let mut rules = Vec::new();
    for (key, value) in &top {
        if let Some(resource) = Resource::GLOBAL.into_iter().find(|r| r.as_str() == key) {
            let access = value.as_str().and_then(Access::parse).filter(|a| *a != Access::List);
            let access = access
                .ok_or_else(|| RulesError::BadAccess { resource: key.clone(), value: value.to_string() })?;
            rules.push(Rule { resource, segment: String::new(), prefix: true, access });
            continue;
        }
        let (name, prefix) = match key.strip_suffix("_prefix") {
            Some(name) => (name, true),
            None => (key.as_str(), false),
        };
        let resource = Resource::NAMED
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| RulesError::UnknownResource(key.clone()))?;
        let Value::Object(segments) = value else {
            return Err(RulesError::Shape(key.clone()));
        };
        for (segment, body) in segments {
            let policy =
                body.get("policy").and_then(Value::as_str).ok_or_else(|| RulesError::Shape(key.clone()))?;
            let access = Access::parse(policy)
                .filter(|a| *a != Access::List || resource == Resource::Key)
                .ok_or_else(|| RulesError::BadAccess { resource: key.clone(), value: policy.to_string() })?;
            rules.push(Rule { resource, segment: segment.clone(), prefix, access });
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(resource: Resource, segment: &str, prefix: bool, access: Access) -> Rule {
        Rule { resource, segment: segment.into(), prefix, access }
    }

    #[test]
    fn hcl_and_json_forms_read_alike() {
        let hcl = r#"
key_prefix "" { policy = "read" }
key "secret" { policy = "deny" }
service "web" { policy = "write" intentions = "read" }
operator = "read"
"#;
        let json = r#"{"key_prefix": {"": {"policy": "read"}}, "key": {"secret": {"policy": "deny"}},
            "service": {"web": {"policy": "write", "intentions": "read"}}, "operator": "read"}"#;
        let mut a = parse(hcl).expect("hcl");
        let mut b = parse(json).expect("json");
        let order = |r: &Rule| (r.resource, r.segment.clone(), r.prefix);
        a.sort_by_key(order);
        b.sort_by_key(order);
        assert_eq!(a, b);
        assert!(a.contains(&rule(Resource::Key, "secret", false, Access::Deny)));
        assert!(a.contains(&rule(Resource::Operator, "", true, Access::Read)));
        assert!(a.contains(&rule(Resource::Service, "web", false, Access::Write)));
    }

    #[test]
    fn typos_and_bad_levels_are_refused() {
        assert_eq!(
            parse(r#"keys_prefix "" { policy = "read" }"#),
            Err(RulesError::UnknownResource("keys_prefix".into()))
        );
        assert!(matches!(parse(r#"key "" { policy = "maybe" }"#), Err(RulesError::BadAccess { .. })));
        assert!(matches!(parse(r#"service "" { policy = "list" }"#), Err(RulesError::BadAccess { .. })));
        assert!(parse(r#"key_prefix "" { policy = "list" }"#).is_ok(), "list is a key level");
        assert!(matches!(parse(r#"operator = "list""#), Err(RulesError::BadAccess { .. })));
        assert!(matches!(parse(r#"key "a" { }"#), Err(RulesError::Shape(_))));
        assert!(matches!(parse("key {"), Err(RulesError::Syntax(_))));
        assert_eq!(parse("  \n"), Ok(Vec::new()));
    }

    #[test]
    fn merging_prefers_deny_then_write() {
        assert_eq!(Access::Read.stronger(Access::Write), Access::Write);
        assert_eq!(Access::Write.stronger(Access::Deny), Access::Deny);
        assert_eq!(Access::List.stronger(Access::Read), Access::List);
    }
}
