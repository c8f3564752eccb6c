//! The rules Consul derives from a name instead of a stored policy: service and node identities,
//! and the built-in templated policies (`builtin/service`, `builtin/node`, `builtin/dns`).

use serde_json::{Value, json};

/// What a service identity grants: the service and its sidecar proxy, and discovery of the rest.
pub fn service_rules(name: &str) -> String {
    format!(
        "service \"{name}\" {{\n  policy = \"write\"\n}}\nservice \"{name}-sidecar-proxy\" {{\n  policy = \"write\"\n}}\nservice_prefix \"\" {{\n  policy = \"read\"\n}}\nnode_prefix \"\" {{\n  policy = \"read\"\n}}"
    )
}

/// What a node identity grants: the node itself, and discovery of services.
pub fn node_rules(name: &str) -> String {
    format!("node \"{name}\" {{\n  policy = \"write\"\n}}\nservice_prefix \"\" {{\n  policy = \"read\"\n}}")
}

pub const DNS_RULES: &str = "node_prefix \"\" {\n  policy = \"read\"\n}\nservice_prefix \"\" {\n  policy = \"read\"\n}\nquery_prefix \"\" {\n  policy = \"read\"\n}";

/// One built-in templated policy.
pub struct Template {
    pub name: &'static str,
    pub description: &'static str,
    /// Whether it takes a `Name` variable.
    pub takes_name: bool,
    /// The rules with `{{.Name}}` where the name goes, as Consul shows the template.
    pub template: &'static str,
}

pub const TEMPLATES: [Template; 3] = [
    Template {
        name: "builtin/dns",
        description: "Gives the token or role permissions for the Consul DNS to query services in the network.",
        takes_name: false,
        template: DNS_RULES,
    },
    Template {
        name: "builtin/node",
        description: "Gives the token or role permissions for a register an agent/node into the catalog. A node is typically a consul agent but can also be a physical server, cloud instance or a container.",
        takes_name: true,
        template: "node \"{{.Name}}\" {\n  policy = \"write\"\n}\nservice_prefix \"\" {\n  policy = \"read\"\n}",
    },
    Template {
        name: "builtin/service",
        description: "Gives the token or role permissions to register a service and discover services in the Consul catalog. It also gives the specified service's sidecar proxy the permission to discover and route traffic to other services.",
        takes_name: true,
        template: "service \"{{.Name}}\" {\n  policy = \"write\"\n}\nservice \"{{.Name}}-sidecar-proxy\" {\n  policy = \"write\"\n}\nservice_prefix \"\" {\n  policy = \"read\"\n}\nnode_prefix \"\" {\n  policy = \"read\"\n}",
    },
];

pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

impl Template {
    /// The rules for one use of the template; `None` when a name it needs is missing.
    pub fn rules(&self, name: &str) -> Option<String> {
        if self.takes_name && name.is_empty() {
            return None;
        }
        Some(self.template.replace("{{.Name}}", name))
    }

    /// As `/v1/acl/templated-policy/name/:name` shows it.
    pub fn describe(&self) -> Value {
        let schema = if self.takes_name {
            "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"name\": { \"type\": \"string\", \"$ref\": \"#/definitions/min-length-one\" }\n  },\n  \"required\": [\"name\"],\n  \"definitions\": {\n    \"min-length-one\": {\n      \"type\": \"string\",\n      \"minLength\": 1\n    }\n  }\n}"
        } else {
            ""
        };
        json!({
            "TemplateName": self.name,
            "Schema": schema,
            "Template": self.template,
            "Description": self.description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::authorizer::{Authorizer, DefaultPolicy};
    use crate::acl::rules::{Access, Resource, parse};

    #[test]
    fn a_service_identity_writes_its_service_and_reads_the_rest() {
        let a = Authorizer::from_rules(parse(&service_rules("web")).expect("rules"), DefaultPolicy::Deny);
        assert!(a.allows(Resource::Service, "web", Access::Write));
        assert!(a.allows(Resource::Service, "web-sidecar-proxy", Access::Write));
        assert!(!a.allows(Resource::Service, "api", Access::Write));
        assert!(a.allows(Resource::Service, "api", Access::Read));
        assert!(a.allows(Resource::Node, "n1", Access::Read));
        assert!(!a.allows(Resource::Key, "x", Access::Read));
    }

    #[test]
    fn templates_expand_with_their_name() {
        let t = template("builtin/service").expect("known");
        assert!(t.rules("my-service").expect("named").contains("service \"my-service\""));
        assert_eq!(t.rules(""), None);
        assert!(template("builtin/dns").expect("dns").rules("").is_some());
        for t in &TEMPLATES {
            let rules = t.rules("x").expect("expands");
            parse(&rules).expect("every template parses");
        }
    }
}
