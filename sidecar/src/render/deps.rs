//! What a template reads from the catalog: one `Dependency` per distinct query, found by rendering.

use std::fmt;
use std::path::PathBuf;

/// One catalog query a template depends on. Each gets its own blocking query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependency {
    /// `GET /v1/catalog/services`.
    Services,
    /// `GET /v1/health/service/:name[?tag=][&dc=]`, every status (filters apply when rendering).
    Service { name: String, tag: Option<String>, dc: Option<String> },
    /// `GET /v1/health/connect/:name[?tag=][&dc=]`: the Connect-capable instances (sidecar
    /// proxies and native services), for Go templates' `connect`.
    Connect { name: String, tag: Option<String>, dc: Option<String> },
    /// `GET /v1/catalog/nodes`.
    Nodes,
    /// `GET /v1/catalog/node/:name`.
    Node(String),
    /// `GET /v1/kv/:key`.
    Key(String),
    /// `GET /v1/kv/:prefix?recurse` (for `ls` and `tree`).
    Tree(String),
    /// `GET /v1/catalog/datacenters` (not blocking: polled).
    Datacenters,
    /// The agent's own node (`GET /v1/agent/self`, then its catalog node): Go templates' `node`
    /// without a name.
    LocalNode,
    /// A local file's text (Go templates' `file`), polled for changes.
    File(PathBuf),
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dependency::Services => write!(f, "catalog.services"),
            Dependency::Service { name, tag, dc } => {
                write!(
                    f,
                    "health.service({}{name}",
                    tag.as_ref().map(|t| format!("{t}.")).unwrap_or_default()
                )?;
                if let Some(dc) = dc {
                    write!(f, "@{dc}")?;
                }
                write!(f, ")")
            }
            Dependency::Connect { name, tag, dc } => {
                let tag = tag.as_ref().map(|t| format!("{t}.")).unwrap_or_default();
                let dc = dc.as_ref().map(|d| format!("@{d}")).unwrap_or_default();
                write!(f, "health.connect({tag}{name}{dc})")
            }
            Dependency::Nodes => write!(f, "catalog.nodes"),
            Dependency::Node(n) => write!(f, "catalog.node({n})"),
            Dependency::Key(k) => write!(f, "kv.key({k})"),
            Dependency::Tree(p) => write!(f, "kv.tree({p})"),
            Dependency::Datacenters => write!(f, "catalog.datacenters"),
            Dependency::LocalNode => write!(f, "catalog.node(local agent)"),
            Dependency::File(path) => write!(f, "file({})", path.display()),
        }
    }
}

/// Which instances `service` returns, by their aggregate check status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusFilter {
    /// consul-template's default: only instances whose checks all pass.
    Healthy,
    /// `|any`: every instance.
    Any,
    /// `|passing,warning`: instances whose aggregate status is one of these.
    Only(Vec<String>),
}

impl StatusFilter {
    pub fn admits(&self, status: &str) -> bool {
        match self {
            StatusFilter::Healthy => status == "passing",
            StatusFilter::Any => true,
            StatusFilter::Only(states) => states.iter().any(|s| s == status),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service query {query:?}: {reason}")]
pub struct SpecError {
    pub query: String,
    pub reason: &'static str,
}

/// Reads consul-template's `"[tag.]name[@dc][|filter]"`.
pub fn parse_service(query: &str) -> Result<(Dependency, StatusFilter), SpecError> {
    let err = |reason| SpecError { query: query.to_string(), reason };
    let (spec, filter) = match query.split_once('|') {
        Some((spec, filter)) => (spec, parse_filter(filter).ok_or_else(|| err("unknown status filter"))?),
        None => (query, StatusFilter::Healthy),
    };
    let (spec, dc) = match spec.split_once('@') {
        Some((spec, dc)) if !dc.is_empty() => (spec, Some(dc.to_string())),
        Some(_) => return Err(err("empty datacenter after @")),
        None => (spec, None),
    };
    let (tag, name) = match spec.rsplit_once('.') {
        Some((tag, name)) => (Some(tag.to_string()), name),
        None => (None, spec),
    };
    if name.is_empty() || tag.as_deref() == Some("") {
        return Err(err("empty service name or tag"));
    }
    Ok((Dependency::Service { name: name.to_string(), tag, dc }, filter))
}

fn parse_filter(filter: &str) -> Option<StatusFilter> {
    let states: Vec<String> = filter.split(',').map(|s| s.trim().to_ascii_lowercase()).collect();
    if states == ["any"] {
        return Some(StatusFilter::Any);
    }
    let known = ["passing", "warning", "critical", "maintenance"];
    states.iter().all(|s| known.contains(&s.as_str())).then_some(StatusFilter::Only(states))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, tag: Option<&str>, dc: Option<&str>) -> Dependency {
        Dependency::Service { name: name.into(), tag: tag.map(Into::into), dc: dc.map(Into::into) }
    }

    #[test]
    fn consul_template_service_queries() {
        assert_eq!(parse_service("web"), Ok((svc("web", None, None), StatusFilter::Healthy)));
        assert_eq!(
            parse_service("rails.web@dc2"),
            Ok((svc("web", Some("rails"), Some("dc2")), StatusFilter::Healthy))
        );
        assert_eq!(parse_service("web|any"), Ok((svc("web", None, None), StatusFilter::Any)));
        let (_, filter) = parse_service("web|passing,warning").expect("filter");
        assert!(filter.admits("warning") && filter.admits("passing") && !filter.admits("critical"));
        assert!(parse_service("web|sometimes").is_err());
        assert!(parse_service("").is_err());
        assert!(parse_service(".web").is_err());
        assert!(parse_service("web@").is_err());
    }
}
