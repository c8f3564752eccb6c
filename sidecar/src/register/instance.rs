//! What the register sidecar wants in the catalog: service instances with a health the sidecar
//! measured, and how each becomes an agent registration with its lease check.

use std::collections::BTreeMap;
use std::time::Duration;

use census_client::duration::GoDuration;
use census_client::types::{AgentServiceRegistration, CheckDefinition};

/// The meta key naming the sidecar that owns an instance; a restarted sidecar adopts (or removes)
/// exactly the instances carrying its own name.
pub const OWNER_META: &str = "census-sidecar";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Passing,
    Warning,
    Critical,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Passing => "passing",
            Health::Warning => "warning",
            Health::Critical => "critical",
        }
    }
}

/// The application's health as last measured, with the output that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub health: Health,
    pub output: String,
}

impl Status {
    pub fn new(health: Health, output: impl Into<String>) -> Self {
        Status { health, output: output.into() }
    }
}

/// One service instance the sidecar keeps registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub address: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// What the application check is (shown as the health check's name), `None` when the instance
    /// has no check of its own and is healthy while it runs.
    pub check_name: Option<String>,
    pub status: Status,
    /// `SERVICE_CHECK_TTL`: an extra TTL check the application itself reports to.
    pub app_ttl: Option<Duration>,
}

/// How long a silent sidecar's instances live: critical after `ttl`, removed by the agent after
/// `deregister_after` critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub ttl: Duration,
    pub deregister_after: Duration,
}

pub fn lease_check_id(service_id: &str) -> String {
    format!("service:{service_id}")
}

pub fn health_check_id(service_id: &str) -> String {
    format!("service:{service_id}:health")
}

impl Instance {
    /// Everything but the measured status: a change here needs a new registration, a change of
    /// status only a check update.
    pub fn same_registration(&self, other: &Instance) -> bool {
        Instance { status: other.status.clone(), ..self.clone() } == *other
    }

    /// The agent registration: the service, its lease check (passing while the sidecar
    /// heartbeats, reaped after `deregister_after` critical), the health check carrying the
    /// measured status (never reaped: an unhealthy instance stays visible as critical), and the
    /// application's own TTL check if it asked for one.
    pub fn registration(&self, owner: &str, lease: Lease) -> AgentServiceRegistration {
        let mut meta = self.meta.clone();
        meta.insert(OWNER_META.into(), owner.into());
        let lease_check = CheckDefinition {
            id: lease_check_id(&self.id),
            name: "census-sidecar lease".into(),
            notes: format!("Heartbeated by census-sidecar {owner}; critical when it falls silent."),
            ttl: GoDuration(lease.ttl),
            status: Health::Passing.as_str().into(),
            deregister_critical_service_after: GoDuration(lease.deregister_after),
            ..Default::default()
        };
        let mut checks = vec![lease_check];
        if let Some(name) = &self.check_name {
            checks.push(CheckDefinition {
                id: health_check_id(&self.id),
                name: name.clone(),
                notes: format!("Measured by census-sidecar {owner}."),
                ttl: GoDuration(lease.ttl),
                status: self.status.health.as_str().into(),
                ..Default::default()
            });
        }
        if let Some(ttl) = self.app_ttl {
            checks.push(CheckDefinition {
                id: format!("service:{}:ttl", self.id),
                name: format!("Service '{}' TTL", self.name),
                ttl: GoDuration(ttl),
                ..Default::default()
            });
        }
        AgentServiceRegistration {
            id: self.id.clone(),
            name: self.name.clone(),
            tags: self.tags.clone(),
            address: self.address.clone(),
            meta,
            port: self.port,
            checks,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> Instance {
        Instance {
            id: "host:web-1:80".into(),
            name: "web".into(),
            address: "10.0.0.5".into(),
            port: 80,
            tags: vec!["v1".into()],
            meta: BTreeMap::new(),
            check_name: Some("HTTP GET http://10.0.0.5:80/health".into()),
            status: Status::new(Health::Warning, "slow"),
            app_ttl: None,
        }
    }

    #[test]
    fn registration_carries_owner_lease_and_measured_status() {
        let lease = Lease { ttl: Duration::from_secs(10), deregister_after: Duration::from_secs(60) };
        let reg = web().registration("host", lease);
        assert_eq!(reg.meta.get(OWNER_META).map(String::as_str), Some("host"));
        assert_eq!(reg.checks.len(), 2);
        assert_eq!(reg.checks[0].id, "service:host:web-1:80");
        assert_eq!(reg.checks[0].deregister_critical_service_after.0, Duration::from_secs(60));
        assert_eq!(reg.checks[1].id, "service:host:web-1:80:health");
        assert_eq!(reg.checks[1].status, "warning");
        assert!(reg.checks[1].deregister_critical_service_after.is_zero());
    }

    #[test]
    fn a_status_change_alone_is_the_same_registration() {
        let mut other = web();
        other.status = Status::new(Health::Critical, "down");
        assert!(web().same_registration(&other));
        other.port = 81;
        assert!(!web().same_registration(&other));
    }
}
