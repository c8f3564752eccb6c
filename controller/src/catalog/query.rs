//! Reads of the catalog, shaped as the API needs them but still in domain terms.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{CheckRecord, CheckStatus, KvRecord, NodeRecord, ServiceRecord};
use super::state::CatalogState;

/// An instance with its checks, owned for handing across the read lock.
#[derive(Debug, Clone)]
pub struct InstanceHealth {
    pub node: NodeRecord,
    pub service: ServiceRecord,
    pub checks: Vec<CheckRecord>,
}

impl InstanceHealth {
    /// The worst status among the checks; passing when there are none.
    pub fn aggregate(&self) -> CheckStatus {
        self.checks.iter().map(|c| c.status).max().unwrap_or(CheckStatus::Passing)
    }
}

fn has_tags(svc: &ServiceRecord, tags: &[String]) -> bool {
    tags.iter().all(|want| svc.tags.iter().any(|t| t.eq_ignore_ascii_case(want)))
}

impl CatalogState {
    /// How many records of each kind the catalog holds (`census snapshot inspect`).
    pub fn record_counts(&self) -> [(&'static str, usize); 7] {
        [
            ("Nodes", self.nodes.len()),
            ("Services", self.services.len()),
            ("Checks", self.checks.len()),
            ("KV", self.kv.len()),
            ("KV tombstones", self.kv_tombstones.len()),
            ("Sessions", self.sessions.len()),
            ("Documents", self.documents.len()),
        ]
    }

    pub fn node(&self, name: &str) -> Option<&NodeRecord> {
        self.nodes.get(name)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.values()
    }

    pub fn service(&self, node: &str, id: &str) -> Option<&ServiceRecord> {
        self.services.get(&(node.to_string(), id.to_string()))
    }

    pub fn check(&self, node: &str, id: &str) -> Option<&CheckRecord> {
        self.checks.get(&(node.to_string(), id.to_string()))
    }

    /// Service name -> the union of its instances' tags, sorted and without duplicates.
    pub fn service_tags(&self) -> BTreeMap<String, Vec<String>> {
        self.by_service_name
            .iter()
            .map(|(name, keys)| {
                let tags: BTreeSet<&String> =
                    keys.iter().filter_map(|k| self.services.get(k)).flat_map(|s| s.tags.iter()).collect();
                (name.clone(), tags.into_iter().cloned().collect())
            })
            .collect()
    }

    /// The registered spelling of a service name, matched without regard to ASCII case (DNS).
    pub fn service_name_ignore_case(&self, name: &str) -> Option<&str> {
        if let Some((k, _)) = self.by_service_name.get_key_value(name) {
            return Some(k);
        }
        self.by_service_name.keys().find(|k| k.eq_ignore_ascii_case(name)).map(String::as_str)
    }

    /// A node by name, matched without regard to ASCII case (DNS).
    pub fn node_ignore_case(&self, name: &str) -> Option<&NodeRecord> {
        self.nodes.get(name).or_else(|| self.nodes.values().find(|n| n.name.eq_ignore_ascii_case(name)))
    }

    /// Every service instance, in (node, ID) order.
    pub fn all_services(&self) -> impl Iterator<Item = &ServiceRecord> {
        self.services.values()
    }

    /// Instances of `name` carrying every tag in `tags`, in (node, ID) order.
    pub fn instances(&self, name: &str, tags: &[String]) -> Vec<(&NodeRecord, &ServiceRecord)> {
        let Some(keys) = self.by_service_name.get(name) else { return Vec::new() };
        keys.iter()
            .filter_map(|k| self.services.get(k))
            .filter(|s| has_tags(s, tags))
            .filter_map(|s| self.nodes.get(&s.node).map(|n| (n, s)))
            .collect()
    }

    /// Node-level checks of the instance's node plus the instance's own checks.
    pub fn checks_for<'a>(&'a self, svc: &'a ServiceRecord) -> Vec<&'a CheckRecord> {
        self.instance_checks(svc).collect()
    }

    fn instance_checks<'a>(&'a self, svc: &'a ServiceRecord) -> impl Iterator<Item = &'a CheckRecord> + 'a {
        self.checks_on(&svc.node).filter(move |c| c.service_id.is_empty() || c.service_id == svc.id)
    }

    /// The worst status among an instance's checks (node-level ones included); passing when none.
    pub fn instance_status(&self, svc: &ServiceRecord) -> CheckStatus {
        self.instance_checks(svc).map(|c| c.status).max().unwrap_or(CheckStatus::Passing)
    }

    /// Instances of `name` with their checks; with `passing_only`, only those whose every check passes.
    pub fn health_of(&self, name: &str, tags: &[String], passing_only: bool) -> Vec<InstanceHealth> {
        self.instances(name, tags)
            .into_iter()
            .map(|(node, svc)| InstanceHealth {
                node: node.clone(),
                service: svc.clone(),
                checks: self.checks_for(svc).into_iter().cloned().collect(),
            })
            .filter(|h| !passing_only || h.checks.iter().all(|c| c.status == CheckStatus::Passing))
            .collect()
    }

    /// Checks of every instance of service `name`.
    pub fn checks_of_service(&self, name: &str) -> Vec<&CheckRecord> {
        self.checks.values().filter(|c| !c.service_id.is_empty() && c.service_name == name).collect()
    }

    /// Checks in one state, or all with `None`.
    pub fn checks_in_state(&self, state: Option<CheckStatus>) -> Vec<&CheckRecord> {
        self.checks.values().filter(|c| state.is_none_or(|s| c.status == s)).collect()
    }

    pub fn node_services(&self, node: &str) -> Vec<&ServiceRecord> {
        self.services_on(node).collect()
    }

    pub fn node_checks(&self, node: &str) -> Vec<&CheckRecord> {
        self.checks_on(node).collect()
    }

    pub fn kv_get(&self, key: &str) -> Option<&KvRecord> {
        self.kv.get(key)
    }

    pub fn kv_list(&self, prefix: &str) -> Vec<&KvRecord> {
        self.kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, r)| r)
            .collect()
    }

    /// Keys under `prefix`; with a separator, keys are cut after the first separator past the prefix
    /// (`web/sub/` stands for everything below it), without duplicates.
    pub fn kv_keys(&self, prefix: &str, separator: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for record in self.kv_list(prefix) {
            let key = &record.key;
            let cut = separator
                .filter(|s| !s.is_empty())
                .and_then(|sep| key[prefix.len()..].find(sep).map(|i| &key[..prefix.len() + i + sep.len()]))
                .unwrap_or(key);
            if out.last().map(String::as_str) != Some(cut) {
                out.push(cut.to_string());
            }
        }
        out
    }
}
