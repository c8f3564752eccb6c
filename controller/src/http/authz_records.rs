//! ACL checks that depend on a request body or on stored records: registrations (catalog and
//! txn), deregistrations, and the rows of listings (nodes, services, checks, sessions).

use super::authz::Authz;
use super::error::ApiResult;
use crate::acl::{Access, Resource};
use crate::catalog::{CatalogState, CheckRecord, Registration};

/// A catalog registration: `service:write` on its service (and on the service of each service
/// check), `node:write` on the node when the node is new, changes, or carries node checks.
pub fn check_registration(authz: &Authz, s: &CatalogState, reg: &Registration) -> ApiResult<()> {
    check_node_of_registration(authz, s, reg)?;
    check_services_of_registration(authz, s, reg)
}

/// The node's share of `check_registration`: `node:write` when the node is new or changes.
pub fn check_node_of_registration(authz: &Authz, s: &CatalogState, reg: &Registration) -> ApiResult<()> {
    let node = &reg.node;
    let changes_node = match s.node(&node.name) {
        None => true,
        Some(existing) => {
            !reg.skip_node_update
                && (existing.address != node.address
                    || existing.meta != node.meta
                    || (!node.tagged_addresses.is_empty()
                        && existing.tagged_addresses != node.tagged_addresses))
        }
    };
    if changes_node {
        authz.require(Resource::Node, &node.name, Access::Write)?;
    }
    Ok(())
}

/// The rest of `check_registration`, as Consul vets a registration: `node:write` for node
/// checks; `service:write` on the service, on the service a reused service ID had, on a proxy's
/// destination, on the service of each service check, and on whatever an existing check of the
/// same ID belonged to (so a token cannot take over another service's ID or checks).
pub fn check_services_of_registration(authz: &Authz, s: &CatalogState, reg: &Registration) -> ApiResult<()> {
    let node = &reg.node;
    if reg.checks.iter().any(|c| c.service_id.is_empty()) {
        authz.require(Resource::Node, &node.name, Access::Write)?;
    }
    if let Some(svc) = &reg.service {
        authz.require(Resource::Service, &svc.name, Access::Write)?;
        if let Some(existing) = s.service(&node.name, &svc.id)
            && existing.name != svc.name
        {
            authz.require(Resource::Service, &existing.name, Access::Write)?;
        }
        if svc.kind == "connect-proxy" && !svc.proxy.is_empty() {
            let destination = serde_json::from_str::<census_client::types::ProxyConfig>(&svc.proxy)
                .map(|p| p.destination_service_name)
                .unwrap_or_default();
            if !destination.is_empty() {
                authz.require(Resource::Service, &destination, Access::Write)?;
            }
        }
    }
    for check in &reg.checks {
        let Some(existing) = s.check(&node.name, &check.id) else { continue };
        match s.service(&node.name, &existing.service_id) {
            Some(owner) => authz.require(Resource::Service, &owner.name, Access::Write)?,
            None => authz.require(Resource::Node, &node.name, Access::Write)?,
        }
    }
    for check in reg.checks.iter().filter(|c| !c.service_id.is_empty()) {
        let in_body =
            reg.service.as_ref().filter(|svc| svc.id == check.service_id).map(|svc| svc.name.clone());
        let name = in_body.or_else(|| s.service(&node.name, &check.service_id).map(|svc| svc.name.clone()));
        authz.require(Resource::Service, name.as_deref().unwrap_or(&check.service_id), Access::Write)?;
    }
    Ok(())
}

/// Removing a service or check: `node:write` on the node suffices; else `service:write` on the
/// service (of the check). Removing a whole node needs `node:write`.
pub fn check_deregistration(
    authz: &Authz,
    s: &CatalogState,
    node: &str,
    service_id: &str,
    check_id: &str,
) -> ApiResult<()> {
    if authz.allows(Resource::Node, node, Access::Write) {
        return Ok(());
    }
    let service_id = if !check_id.is_empty() {
        s.check(node, check_id).map(|c| c.service_id.clone()).unwrap_or_default()
    } else {
        service_id.to_string()
    };
    if service_id.is_empty() {
        return Err(authz.denied(Resource::Node, node, Access::Write));
    }
    let name = s.service(node, &service_id).map(|svc| svc.name.clone()).unwrap_or(service_id);
    authz.require(Resource::Service, &name, Access::Write)
}

/// Whether the token may see a check: its node, and its service when it has one.
pub fn may_read_check(authz: &Authz, check: &CheckRecord) -> bool {
    authz.allows(Resource::Node, &check.node, Access::Read)
        && (check.service_id.is_empty() || authz.allows(Resource::Service, &check.service_name, Access::Read))
}
