//! What DNS may tell: with ACLs on, answers are filtered by the agent's `default` token (else
//! `anonymous`), as Consul's DNS does: a service without `service:read`, a node without
//! `node:read` (and the instances on such nodes) are simply not found.

use super::lookup::Found;
use crate::acl::{Access, Authorizer, Resource};

pub fn visible(found: Found, authz: &Authorizer) -> Found {
    let node_ok = |name: &str| authz.allows(Resource::Node, name, Access::Read);
    match found {
        Found::Service { name, instances } => {
            if !authz.allows(Resource::Service, &name, Access::Read) {
                return Found::Nothing;
            }
            let instances: Vec<_> = instances.into_iter().filter(|i| node_ok(&i.node)).collect();
            if instances.is_empty() { Found::Nothing } else { Found::Service { name, instances } }
        }
        Found::Node(facts) if !node_ok(&facts.name) => Found::Nothing,
        Found::Reverse(names) => {
            let names: Vec<String> = names
                .into_iter()
                .filter(|n| {
                    let mut parts = n.splitn(3, '.');
                    match (parts.next(), parts.next()) {
                        (Some(node), Some("node")) => node_ok(node),
                        (Some(service), Some("service")) => {
                            authz.allows(Resource::Service, service, Access::Read)
                        }
                        _ => false,
                    }
                })
                .collect();
            if names.is_empty() { Found::Nothing } else { Found::Reverse(names) }
        }
        Found::Apex { servers } => {
            Found::Apex { servers: servers.into_iter().filter(|(n, _)| node_ok(n)).collect() }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::DefaultPolicy;
    use crate::acl::rules::parse;
    use crate::dns::lookup::{Instance, NodeFacts};

    fn instance(node: &str) -> Instance {
        Instance {
            node: node.into(),
            node_address: "10.0.0.1".into(),
            service_address: String::new(),
            port: 80,
            weight: 1,
        }
    }

    #[test]
    fn the_token_decides_what_dns_tells() {
        let rules = parse(r#"service "web" { policy = "read" } node_prefix "public-" { policy = "read" }"#);
        let authz = Authorizer::from_rules(rules.expect("rules"), DefaultPolicy::Deny);
        let web = Found::Service {
            name: "web".into(),
            instances: vec![instance("public-1"), instance("private-1")],
        };
        assert_eq!(
            visible(web, &authz),
            Found::Service { name: "web".into(), instances: vec![instance("public-1")] }
        );
        let db = Found::Service { name: "db".into(), instances: vec![instance("public-1")] };
        assert_eq!(visible(db, &authz), Found::Nothing);
        let private =
            NodeFacts { name: "private-1".into(), address: "10.0.0.2".into(), meta: Default::default() };
        assert_eq!(visible(Found::Node(private), &authz), Found::Nothing);
        let names = Found::Reverse(vec!["public-1.node.dc1".into(), "db.service.dc1".into()]);
        assert_eq!(visible(names, &authz), Found::Reverse(vec!["public-1.node.dc1".into()]));
    }
}
