//! `register --platform kubernetes`: the pod this sidecar runs in, from downward-API environment,
//! as one instance whose health the sidecar measures against the app on localhost.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use super::instance::{Health, Instance, Status};
use super::probe::{Probe, Prober};
use super::sync::Desired;

/// The pod, as the downward API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub ip: String,
    pub node: String,
}

/// What to register for the pod and how to check it.
#[derive(Debug, Clone)]
pub struct PodService {
    pub pod: Pod,
    pub service: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    /// Where the app answers checks (default 127.0.0.1: the pod's own network namespace).
    pub check_host: String,
    pub check: Option<PodCheck>,
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodCheck {
    Http { path: String },
    Tcp,
    Grpc { service: String },
}

impl PodService {
    /// The owner name: one pod, one owner.
    pub fn owner(&self) -> String {
        format!("{}.{}", self.pod.name, self.pod.namespace)
    }

    pub fn probe(&self) -> Option<Probe> {
        let target = format!("{}:{}", self.check_host, self.port);
        self.check.as_ref().map(|c| match c {
            PodCheck::Http { path } => {
                let path = if path.starts_with('/') { path.clone() } else { format!("/{path}") };
                Probe::Http { url: format!("http://{target}{path}") }
            }
            PodCheck::Tcp => Probe::Tcp { address: target },
            PodCheck::Grpc { service } => Probe::Grpc { address: target, service: service.clone() },
        })
    }

    /// The instance with a given status; its ID names pod, namespace and port.
    pub fn instance(&self, status: Status) -> Instance {
        let mut meta = self.meta.clone();
        meta.insert("k8s-namespace".into(), self.pod.namespace.clone());
        meta.insert("k8s-pod".into(), self.pod.name.clone());
        if !self.pod.node.is_empty() {
            meta.insert("k8s-node".into(), self.pod.node.clone());
        }
        Instance {
            id: format!("{}:{}:{}", self.pod.namespace, self.pod.name, self.port),
            name: self.service.clone(),
            address: self.pod.ip.clone(),
            port: self.port,
            tags: self.tags.clone(),
            meta,
            check_name: self.probe().map(|p| p.describe()),
            status,
            app_ttl: None,
        }
    }
}

/// Measures the app every interval and publishes the instance; a status change is published at
/// once (the sync loop pushes it on the next wake-up).
pub async fn measure(spec: PodService, prober: Prober, desired: watch::Sender<Desired>) {
    let probe = spec.probe();
    let mut tick = tokio::time::interval(spec.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let status = match &probe {
            Some(p) => prober.run(p, spec.timeout).await,
            None => Status::new(Health::Passing, "no check configured"),
        };
        let instance = spec.instance(status);
        desired.send_if_modified(|d| {
            if d.get(&instance.id) == Some(&instance) {
                return false;
            }
            d.clear();
            d.insert(instance.id.clone(), instance);
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(check: Option<PodCheck>) -> PodService {
        PodService {
            pod: Pod {
                name: "web-0".into(),
                namespace: "shop".into(),
                ip: "10.1.2.3".into(),
                node: "n1".into(),
            },
            service: "web".into(),
            port: 8080,
            tags: vec!["v2".into()],
            meta: BTreeMap::new(),
            check_host: "127.0.0.1".into(),
            check,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn instance_names_the_pod_and_registers_its_ip() {
        let i =
            spec(Some(PodCheck::Http { path: "healthz".into() })).instance(Status::new(Health::Passing, ""));
        assert_eq!(i.id, "shop:web-0:8080");
        assert_eq!((i.address.as_str(), i.port), ("10.1.2.3", 8080));
        assert_eq!(i.meta.get("k8s-pod").map(String::as_str), Some("web-0"));
        assert_eq!(i.check_name.as_deref(), Some("HTTP GET http://127.0.0.1:8080/healthz"));
    }

    #[test]
    fn probes_target_the_app_on_localhost() {
        assert_eq!(spec(Some(PodCheck::Tcp)).probe(), Some(Probe::Tcp { address: "127.0.0.1:8080".into() }));
        assert_eq!(
            spec(Some(PodCheck::Grpc { service: "shop.Web".into() })).probe(),
            Some(Probe::Grpc { address: "127.0.0.1:8080".into(), service: "shop.Web".into() })
        );
        assert_eq!(spec(None).probe(), None);
    }
}
