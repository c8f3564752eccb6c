//! The query parameters that narrow and order catalog and health listings: `?tag=` (repeatable,
//! all must match), `?node-meta=key:value` (repeatable, all must match), `?peer=` (census has
//! no cluster peerings, so a peer name matches nothing, as in Consul without that peering) and
//! `?near=` (the named node, or `_agent` for this one, first; census has no network coordinates
//! yet, so the rest keep their order).

use super::error::ApiResult;
use super::query::Params;
use crate::catalog::NodeRecord;

#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub tags: Vec<String>,
    node_meta: Vec<(String, String)>,
    near: Option<String>,
    peer: bool,
}

impl Selection {
    pub fn new(params: &Params, own_node: &str) -> ApiResult<Selection> {
        let near = params
            .get("near")
            .filter(|n| !n.is_empty())
            .map(|n| if n == "_agent" { own_node.to_string() } else { n.to_string() });
        Ok(Selection {
            tags: params.tags(),
            node_meta: params.node_meta()?,
            near,
            peer: params.get("peer").is_some_and(|p| !p.is_empty()),
        })
    }

    /// Whether the node's instances may be listed.
    pub fn node_ok(&self, node: &NodeRecord) -> bool {
        !self.peer && self.node_meta.iter().all(|(k, v)| node.meta.get(k) == Some(v))
    }

    /// Orders by nearness to the `near` node: that node first, the rest as they were.
    pub fn sort<T>(&self, items: &mut [T], node_of: impl Fn(&T) -> &str) {
        if let Some(near) = &self.near {
            items.sort_by_key(|item| node_of(item) != near);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::from_query(query).expect("query")
    }

    #[test]
    fn node_meta_and_peer_narrow_and_near_orders() {
        let node = |name: &str, rack: &str| NodeRecord {
            name: name.into(),
            meta: [("rack".to_string(), rack.to_string())].into(),
            ..Default::default()
        };
        let sel = Selection::new(&params("node-meta=rack:r1&near=_agent"), "b").expect("selection");
        assert!(sel.node_ok(&node("a", "r1")));
        assert!(!sel.node_ok(&node("a", "r2")));
        let mut names = vec!["a", "b", "c"];
        sel.sort(&mut names, |n| n);
        assert_eq!(names, ["b", "a", "c"]);
        let peer = Selection::new(&params("peer=other"), "b").expect("selection");
        assert!(!peer.node_ok(&node("a", "r1")), "no peerings: a peer's listing is empty");
        assert!(Selection::new(&params("node-meta=norack"), "b").is_err());
    }
}
