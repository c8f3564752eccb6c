//! Alias checks: the health of another service instance (its checks and its node's), or of a
//! whole node when no service is named, read from this agent's catalog.

use crate::catalog::{CatalogState, CheckStatus};

pub fn health(s: &CatalogState, node: &str, service_id: &str) -> (CheckStatus, String) {
    let mut status = CheckStatus::Passing;
    let mut output = "No checks found.".to_string();
    for check in s.node_checks(node) {
        if !check.service_id.is_empty() && check.service_id != service_id {
            continue;
        }
        if check.status > status {
            status = check.status;
            output = format!("Aliased check {:?} failing: {}", check.name, check.output);
        } else if status == CheckStatus::Passing {
            output = "All checks passing.".to_string();
        }
    }
    if !service_id.is_empty() && s.service(node, service_id).is_none() {
        return (CheckStatus::Critical, "Service not found".to_string());
    }
    (status, output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CheckRegistration, Command, NodeSpec, Registration, ServiceSpec};

    fn register(
        state: &mut CatalogState,
        index: u64,
        service: Option<&str>,
        check: (&str, &str, CheckStatus),
    ) {
        let reg = Registration {
            node: NodeSpec { name: "n1".into(), address: "10.0.0.1".into(), ..Default::default() },
            service: service.map(|id| ServiceSpec { id: id.into(), name: id.into(), ..Default::default() }),
            checks: vec![CheckRegistration {
                id: check.0.into(),
                name: check.0.into(),
                status: Some(check.2),
                notes: String::new(),
                output: "out".into(),
                service_id: check.1.into(),
                spec: Default::default(),
            }],
            ..Default::default()
        };
        state.apply(index, &Command::Register(reg));
    }

    #[test]
    fn mirrors_the_worst_check_of_the_service_and_its_node() {
        let mut state = CatalogState::default();
        register(&mut state, 1, Some("web"), ("web-check", "web", CheckStatus::Passing));
        register(&mut state, 2, Some("db"), ("db-check", "db", CheckStatus::Critical));
        assert_eq!(
            health(&state, "n1", "web").0,
            CheckStatus::Passing,
            "another service's check does not count"
        );
        register(&mut state, 3, None, ("node-check", "", CheckStatus::Warning));
        assert_eq!(health(&state, "n1", "web").0, CheckStatus::Warning, "a node check counts");
        assert_eq!(health(&state, "n1", "gone"), (CheckStatus::Critical, "Service not found".to_string()));
    }
}
