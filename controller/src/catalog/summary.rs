//! Per-service and per-node roll-ups for overview pages (the web UI): one pass over the tables
//! instead of one query per service.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{CheckRecord, CheckStatus, NodeRecord, ServiceRecord};
use super::state::CatalogState;

/// Counts of checks by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub passing: u32,
    pub warning: u32,
    pub critical: u32,
}

impl StatusCounts {
    fn add(&mut self, status: CheckStatus) {
        match status {
            CheckStatus::Passing => self.passing += 1,
            CheckStatus::Warning => self.warning += 1,
            CheckStatus::Critical => self.critical += 1,
        }
    }
}

/// One service name across all its instances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSummary {
    pub name: String,
    pub kind: String,
    /// The union of the instances' tags, sorted.
    pub tags: Vec<String>,
    /// The nodes the instances run on, sorted.
    pub nodes: Vec<String>,
    pub instances: u32,
    /// The checks of every instance, node-level checks of its node included (as Consul counts them).
    pub checks: StatusCounts,
}

/// A node with what runs on it.
#[derive(Debug, Clone)]
pub struct NodeSummary<'a> {
    pub node: &'a NodeRecord,
    pub services: Vec<&'a ServiceRecord>,
    pub checks: Vec<&'a CheckRecord>,
}

impl CatalogState {
    /// Every service name with its instance count and check counts, in name order.
    pub fn service_summaries(&self) -> Vec<ServiceSummary> {
        self.by_service_name
            .iter()
            .map(|(name, keys)| {
                let mut tags = BTreeSet::new();
                let mut nodes = BTreeSet::new();
                let mut summary = ServiceSummary { name: name.clone(), ..Default::default() };
                for svc in keys.iter().filter_map(|k| self.services.get(k)) {
                    summary.instances += 1;
                    summary.kind.clone_from(&svc.kind);
                    tags.extend(svc.tags.iter().cloned());
                    nodes.insert(svc.node.clone());
                    for check in self.checks_for(svc) {
                        summary.checks.add(check.status);
                    }
                }
                summary.tags = tags.into_iter().collect();
                summary.nodes = nodes.into_iter().collect();
                summary
            })
            .collect()
    }

    /// Every node with its services and checks, in name order.
    pub fn node_summaries(&self) -> Vec<NodeSummary<'_>> {
        let mut services: BTreeMap<&str, Vec<&ServiceRecord>> = BTreeMap::new();
        for svc in self.all_services() {
            services.entry(svc.node.as_str()).or_default().push(svc);
        }
        self.nodes()
            .map(|node| NodeSummary {
                node,
                services: services.remove(node.name.as_str()).unwrap_or_default(),
                checks: self.node_checks(&node.name),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, CheckRegistration, Command, NodeSpec, Registration, ServiceSpec};

    fn register(catalog: &Catalog, index: u64, node: &str, id: &str, name: &str, status: CheckStatus) {
        let cmd = Command::Register(Registration {
            node: NodeSpec { name: node.into(), address: "10.0.0.1".into(), ..Default::default() },
            skip_node_update: false,
            service: Some(ServiceSpec {
                id: id.into(),
                name: name.into(),
                tags: vec![format!("t-{id}")],
                ..Default::default()
            }),
            checks: vec![CheckRegistration {
                id: format!("service:{id}"),
                name: "c".into(),
                status: Some(status),
                notes: String::new(),
                output: String::new(),
                service_id: id.into(),
                spec: Default::default(),
            }],
            replace_service_checks: false,
        });
        catalog.apply(index, &cmd);
    }

    #[test]
    fn services_roll_up_instances_tags_nodes_and_check_counts() {
        let catalog = Catalog::new();
        register(&catalog, 1, "n1", "web-1", "web", CheckStatus::Passing);
        register(&catalog, 2, "n2", "web-2", "web", CheckStatus::Critical);
        register(&catalog, 3, "n1", "db-1", "db", CheckStatus::Warning);
        let summaries = catalog.read(|s| s.service_summaries());
        assert_eq!(summaries.len(), 2);
        let web = &summaries[1];
        assert_eq!(web.name, "web");
        assert_eq!(web.instances, 2);
        assert_eq!(web.tags, vec!["t-web-1".to_string(), "t-web-2".to_string()]);
        assert_eq!(web.nodes, vec!["n1".to_string(), "n2".to_string()]);
        assert_eq!(web.checks, StatusCounts { passing: 1, warning: 0, critical: 1 });
        assert_eq!(summaries[0].checks, StatusCounts { passing: 0, warning: 1, critical: 0 });
    }

    #[test]
    fn nodes_carry_their_own_services_and_checks() {
        let catalog = Catalog::new();
        register(&catalog, 1, "n1", "web-1", "web", CheckStatus::Passing);
        register(&catalog, 2, "n2", "web-2", "web", CheckStatus::Critical);
        register(&catalog, 3, "n1", "db-1", "db", CheckStatus::Warning);
        catalog.read(|s| {
            let nodes = s.node_summaries();
            assert_eq!(nodes.len(), 2);
            assert_eq!(nodes[0].node.name, "n1");
            let ids: Vec<&str> = nodes[0].services.iter().map(|s| s.id.as_str()).collect();
            assert_eq!(ids, vec!["db-1", "web-1"]);
            assert_eq!(nodes[0].checks.len(), 2);
            assert_eq!(nodes[1].services.len(), 1);
        });
    }
}
