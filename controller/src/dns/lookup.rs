//! Questions → catalog facts. Pure reads of a `CatalogState`; no DNS records yet.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::name::Question;
use crate::catalog::{CatalogState, CheckStatus};

/// One service instance that DNS may hand out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    pub node: String,
    pub node_address: String,
    /// The service's own address when it has one, else empty.
    pub service_address: String,
    pub port: u16,
    pub weight: u16,
}

impl Instance {
    /// The address clients connect to: the service's, else its node's.
    pub fn address(&self) -> &str {
        if self.service_address.is_empty() { &self.node_address } else { &self.service_address }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeFacts {
    pub name: String,
    pub address: String,
    pub meta: BTreeMap<String, String>,
}

/// What the catalog knows about a question.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Found {
    /// Eligible instances of a service (never empty), under its registered name.
    Service {
        name: String,
        instances: Vec<Instance>,
    },
    Node(NodeFacts),
    Addr(IpAddr),
    /// The zone apex: the servers (node name, address) for NS records.
    Apex {
        servers: Vec<(String, String)>,
    },
    /// Names that point back at an address, relative to the domain (`n1.node.dc1`).
    Reverse(Vec<String>),
    /// No such name (or a service with no eligible instance).
    Nothing,
}

/// Looks `question` up in `state`. `dc` is this agent's datacenter; a question for another is unknown.
pub fn lookup(state: &CatalogState, question: &Question, dc: &str, only_passing: bool) -> Found {
    let other_dc = |asked: &Option<String>| asked.as_deref().is_some_and(|d| !d.eq_ignore_ascii_case(dc));
    match question {
        Question::Apex => Found::Apex { servers: servers(state) },
        Question::Service { dc: asked, .. }
        | Question::Node { dc: asked, .. }
        | Question::Addr { dc: asked, .. }
            if other_dc(asked) =>
        {
            Found::Nothing
        }
        Question::Service { name, tag, .. } => service(state, name, tag.as_deref(), only_passing),
        Question::Node { name, .. } => match state.node_ignore_case(name) {
            Some(n) => Found::Node(NodeFacts {
                name: n.name.clone(),
                address: n.address.clone(),
                meta: n.meta.clone(),
            }),
            None => Found::Nothing,
        },
        Question::Addr { ip, .. } => Found::Addr(*ip),
        Question::Reverse(ip) => reverse(state, *ip, dc),
        Question::Unknown => Found::Nothing,
    }
}

/// Instances of a service with no critical check (nor warning, with `only_passing`).
fn service(state: &CatalogState, name: &str, tag: Option<&str>, only_passing: bool) -> Found {
    let Some(registered) = state.service_name_ignore_case(name) else { return Found::Nothing };
    let tags: Vec<String> = tag.map(|t| vec![t.to_string()]).unwrap_or_default();
    let mut instances = Vec::new();
    for (node, svc) in state.instances(registered, &tags) {
        let weight = match state.instance_status(svc) {
            CheckStatus::Critical => continue,
            CheckStatus::Warning if only_passing => continue,
            CheckStatus::Warning => svc.weights.warning,
            CheckStatus::Passing => svc.weights.passing,
        };
        instances.push(Instance {
            node: node.name.clone(),
            node_address: node.address.clone(),
            service_address: if svc.address == node.address { String::new() } else { svc.address.clone() },
            port: svc.port,
            weight: u16::try_from(weight).unwrap_or(u16::MAX),
        });
    }
    if instances.is_empty() {
        Found::Nothing
    } else {
        Found::Service { name: registered.to_string(), instances }
    }
}

/// The servers: the nodes running the `consul` service every census server registers.
fn servers(state: &CatalogState) -> Vec<(String, String)> {
    state.instances("consul", &[]).into_iter().map(|(n, _)| (n.name.clone(), n.address.clone())).collect()
}

/// Nodes and services registered at `ip`.
fn reverse(state: &CatalogState, ip: IpAddr, dc: &str) -> Found {
    let same = |addr: &str| addr.parse::<IpAddr>().is_ok_and(|a| a == ip);
    let mut names: Vec<String> =
        state.nodes().filter(|n| same(&n.address)).map(|n| format!("{}.node.{dc}", n.name)).collect();
    for svc in state.all_services().filter(|s| same(&s.address)) {
        let name = format!("{}.service.{dc}", svc.name);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() { Found::Nothing } else { Found::Reverse(names) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{
        Catalog, CheckRegistration, CheckSpec, CheckStatus, Command, NodeSpec, Registration, ServiceSpec,
    };

    fn register(
        catalog: &Catalog,
        index: u64,
        node: &str,
        addr: &str,
        svc: ServiceSpec,
        status: CheckStatus,
    ) {
        let check = CheckRegistration {
            id: format!("check-{}", svc.id),
            name: "check".into(),
            status: Some(status),
            notes: String::new(),
            output: String::new(),
            service_id: svc.id.clone(),
            spec: CheckSpec::default(),
        };
        let node = NodeSpec { name: node.into(), address: addr.into(), ..Default::default() };
        let reg = Registration { node, service: Some(svc), checks: vec![check], ..Default::default() };
        catalog.apply(index, &Command::Register(reg));
    }

    fn web(id: &str, tags: &[&str]) -> ServiceSpec {
        ServiceSpec {
            id: id.into(),
            name: "Web".into(),
            port: 80,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    fn ask(catalog: &Catalog, q: Question, only_passing: bool) -> Found {
        catalog.read(|s| lookup(s, &q, "dc1", only_passing))
    }

    fn svc(name: &str, tag: Option<&str>, dc: Option<&str>) -> Question {
        Question::Service { name: name.into(), tag: tag.map(Into::into), dc: dc.map(Into::into) }
    }

    #[test]
    fn health_decides_who_is_answered() {
        let catalog = Catalog::new();
        register(&catalog, 1, "n1", "10.0.0.1", web("w1", &["v1"]), CheckStatus::Passing);
        register(&catalog, 2, "n2", "10.0.0.2", web("w2", &[]), CheckStatus::Warning);
        register(&catalog, 3, "n3", "10.0.0.3", web("w3", &[]), CheckStatus::Critical);
        let Found::Service { name, instances } = ask(&catalog, svc("web", None, None), false) else {
            panic!("web not found")
        };
        assert_eq!(name, "Web");
        let nodes: Vec<&str> = instances.iter().map(|i| i.node.as_str()).collect();
        assert_eq!(nodes, ["n1", "n2"]);
        let Found::Service { instances, .. } = ask(&catalog, svc("web", None, None), true) else {
            panic!("web not found")
        };
        assert_eq!(instances.len(), 1);
        let Found::Service { instances, .. } = ask(&catalog, svc("web", Some("V1"), Some("DC1")), false)
        else {
            panic!("tagged web not found")
        };
        assert_eq!(instances[0].address(), "10.0.0.1");
        assert_eq!(ask(&catalog, svc("web", Some("v2"), None), false), Found::Nothing);
        assert_eq!(ask(&catalog, svc("web", None, Some("dc2")), false), Found::Nothing);
    }

    #[test]
    fn service_with_only_critical_instances_is_nothing() {
        let catalog = Catalog::new();
        register(&catalog, 1, "n1", "10.0.0.1", web("w1", &[]), CheckStatus::Critical);
        assert_eq!(ask(&catalog, svc("web", None, None), false), Found::Nothing);
    }

    #[test]
    fn service_address_overrides_node_address_and_reverse_finds_both() {
        let catalog = Catalog::new();
        let mut spec = web("w1", &[]);
        spec.address = "10.9.9.9".into();
        register(&catalog, 1, "n1", "10.0.0.1", spec, CheckStatus::Passing);
        let Found::Service { instances, .. } = ask(&catalog, svc("web", None, None), false) else {
            panic!("web not found")
        };
        assert_eq!(instances[0].address(), "10.9.9.9");
        let node_ip = "10.0.0.1".parse().expect("ip");
        assert_eq!(
            ask(&catalog, Question::Reverse(node_ip), false),
            Found::Reverse(vec!["n1.node.dc1".into()])
        );
        let svc_ip = "10.9.9.9".parse().expect("ip");
        assert_eq!(
            ask(&catalog, Question::Reverse(svc_ip), false),
            Found::Reverse(vec!["Web.service.dc1".into()])
        );
    }
}
