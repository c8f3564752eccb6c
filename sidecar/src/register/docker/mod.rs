//! `register --platform docker`: registrator's job. Follows the Docker engine's container events
//! (read-only calls: events, list, inspect), plans instances per container, runs the probes the
//! containers ask for, and publishes the wanted set for the catalog sync.

pub mod mapping;
pub mod proxy;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::mapping::{ContainerView, HostRules, Planned, Published, combine, plan};
use super::instance::Status;
use super::probe::{Probe, Prober};
use super::sync::Desired;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot connect to Docker ({host}): {source}")]
    Connect { host: String, source: bollard::errors::Error },
    #[error("Docker: {0}")]
    Api(#[from] bollard::errors::Error),
}

fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Connects as `DOCKER_HOST` says and settles on the engine's API version.
pub async fn connect() -> Result<Docker, DockerError> {
    let err = |source| DockerError::Connect { host: docker_host(), source };
    let docker = Docker::connect_with_defaults().map_err(err)?;
    docker.negotiate_version().await.map_err(err)
}

/// What `docker inspect` says, reduced to what registration needs.
pub fn view(c: &ContainerInspectResponse) -> ContainerView {
    let config = c.config.clone().unwrap_or_default();
    let mut settings: BTreeMap<String, String> = config
        .env
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .filter(|(k, _)| k.starts_with("SERVICE_"))
        .collect();
    for (k, v) in config.labels.unwrap_or_default() {
        if k.starts_with("SERVICE_") {
            settings.insert(k, v);
        }
    }
    let port_proto = |spec: &str| -> Option<(u16, String)> {
        let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
        Some((port.parse().ok()?, proto.to_string()))
    };
    let mut exposed: Vec<(u16, String)> =
        config.exposed_ports.unwrap_or_default().keys().filter_map(|k| port_proto(k)).collect();
    exposed.sort();
    let net = c.network_settings.clone().unwrap_or_default();
    let mut published = Vec::new();
    for (spec, bindings) in net.ports.unwrap_or_default() {
        let Some((container_port, proto)) = port_proto(&spec) else { continue };
        for b in bindings.unwrap_or_default() {
            let Some(host_port) = b.host_port.and_then(|p| p.parse().ok()) else { continue };
            published.push(Published {
                container_port,
                proto: proto.clone(),
                host_ip: b.host_ip.unwrap_or_default(),
                host_port,
            });
        }
    }
    published.sort_by_key(|p| (p.container_port, p.host_port));
    let networks = net
        .networks
        .unwrap_or_default()
        .into_iter()
        .map(|(name, e)| (name, e.ip_address.unwrap_or_default()))
        .collect();
    let state = c.state.clone().unwrap_or_default();
    let health = state.health.and_then(|h| {
        let status = h.status?.to_string();
        if status.is_empty() || status == "none" {
            return None;
        }
        let output = h.log.and_then(|l| l.last().and_then(|r| r.output.clone())).unwrap_or_default();
        Some((status, output))
    });
    ContainerView {
        id: c.id.clone().unwrap_or_default(),
        name: c.name.clone().unwrap_or_default().trim_start_matches('/').to_string(),
        image: config.image.unwrap_or_default(),
        running: state.running.unwrap_or(false),
        exit_code: state.exit_code.unwrap_or(0),
        settings,
        exposed,
        published,
        networks,
        health,
    }
}

/// A running probe and what it probes, so a changed plan restarts it.
struct ProbeTask {
    spec: (Probe, Duration, Duration),
    task: JoinHandle<()>,
}

/// The host's containers and the latest probe results, turned into the wanted instances.
pub struct HostState {
    rules: HostRules,
    prober: Prober,
    containers: HashMap<String, ContainerView>,
    probe_results: HashMap<String, Status>,
    probes: HashMap<String, ProbeTask>,
    results_tx: mpsc::Sender<(String, Status)>,
}

impl HostState {
    pub fn new(rules: HostRules, prober: Prober, results_tx: mpsc::Sender<(String, Status)>) -> Self {
        HostState {
            rules,
            prober,
            containers: HashMap::new(),
            probe_results: HashMap::new(),
            probes: HashMap::new(),
            results_tx,
        }
    }

    fn planned(&self) -> Vec<Planned> {
        let mut all: Vec<Planned> = self.containers.values().flat_map(|c| plan(c, &self.rules)).collect();
        all.sort_by(|a, b| a.instance.id.cmp(&b.instance.id));
        all
    }

    /// The wanted instances, each with its probe's result folded into its status; probe tasks
    /// follow the plan (started, restarted on change, stopped when gone).
    pub fn desired(&mut self) -> Desired {
        let planned = self.planned();
        let mut wanted = Desired::new();
        let mut live_probes = HashMap::new();
        for p in planned {
            let mut instance = p.instance;
            if let Some(spec) = p.probe {
                let id = instance.id.clone();
                let task = match self.probes.remove(&id) {
                    Some(t) if t.spec == spec => t,
                    other => {
                        if let Some(t) = other {
                            t.task.abort();
                            self.probe_results.remove(&id);
                        }
                        ProbeTask { spec: spec.clone(), task: self.spawn_probe(id.clone(), spec) }
                    }
                };
                live_probes.insert(id.clone(), task);
                // Until the first result arrives the instance is not known to be healthy.
                let probed =
                    self.probe_results.get(&id).cloned().unwrap_or_else(|| {
                        Status::new(super::instance::Health::Critical, "first check pending")
                    });
                instance.status = combine(&instance.status, &probed);
            }
            wanted.insert(instance.id.clone(), instance);
        }
        for (id, t) in self.probes.drain() {
            t.task.abort();
            self.probe_results.remove(&id);
        }
        self.probes = live_probes;
        wanted
    }

    fn spawn_probe(
        &self,
        id: String,
        (probe, interval, timeout): (Probe, Duration, Duration),
    ) -> JoinHandle<()> {
        let prober = self.prober.clone();
        let tx = self.results_tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let status = prober.run(&probe, timeout).await;
                if tx.send((id.clone(), status)).await.is_err() {
                    return;
                }
            }
        })
    }

    /// Records a probe result; `true` when it changes the status.
    pub fn probe_result(&mut self, id: String, status: Status) -> bool {
        if !self.probes.contains_key(&id) {
            return false;
        }
        self.probe_results.insert(id, status.clone()).as_ref() != Some(&status)
    }

    pub fn upsert(&mut self, view: ContainerView) {
        self.containers.insert(view.id.clone(), view);
    }

    pub fn remove(&mut self, id: &str) {
        self.containers.remove(id);
    }

    pub fn replace_all(&mut self, views: Vec<ContainerView>) {
        self.containers = views.into_iter().map(|v| (v.id.clone(), v)).collect();
    }
}

/// Reads every container (running, and exited ones for `-deregister on-success`).
async fn list_all(docker: &Docker) -> Result<Vec<ContainerView>, DockerError> {
    let options = ListContainersOptions { all: true, ..Default::default() };
    let mut views = Vec::new();
    for summary in docker.list_containers(Some(options)).await? {
        let Some(id) = summary.id else { continue };
        match docker.inspect_container(&id, None::<bollard::query_parameters::InspectContainerOptions>).await
        {
            Ok(c) => views.push(view(&c)),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(views)
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// How far before the listing the event stream starts (clock granularity, and a margin).
const EVENTS_OVERLAP_SECS: u64 = 2;

/// Follows the engine until its stream ends or fails: lists the containers, then applies each
/// event by inspecting its container. The event stream connects only when first polled, after
/// the listing, so it asks for events from just before the listing on: nothing in between is
/// missed. `resync` > 0 re-lists on that period as well.
pub async fn follow(
    docker: &Docker,
    state: &mut HostState,
    results: &mut mpsc::Receiver<(String, Status)>,
    desired: &watch::Sender<Desired>,
    resync: Option<Duration>,
) -> Result<(), DockerError> {
    let filters = HashMap::from([("type".to_string(), vec!["container".to_string()])]);
    // The stream asks the engine only when first polled, after the listing: events from a little
    // before the listing on are asked for, so one that happens in between (a container turning
    // healthy) is replayed instead of lost. A replayed event only repeats an inspect.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs().saturating_sub(EVENTS_OVERLAP_SECS).to_string());
    let mut events =
        docker.events(Some(EventsOptions { since, filters: Some(filters), ..Default::default() }));
    state.replace_all(list_all(docker).await?);
    publish(state, desired);
    let mut resync_tick = tokio::time::interval(resync.unwrap_or(Duration::from_secs(3600)));
    resync_tick.tick().await;
    loop {
        tokio::select! {
            event = events.next() => {
                let event = match event {
                    Some(Ok(e)) => e,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                };
                let action = event.action.unwrap_or_default();
                let Some(id) = event.actor.and_then(|a| a.id) else { continue };
                if !relevant(&action) {
                    continue;
                }
                tracing::debug!(container = %id, action = %action, "docker event");
                match docker.inspect_container(&id, None::<bollard::query_parameters::InspectContainerOptions>).await {
                    Ok(c) => state.upsert(view(&c)),
                    Err(e) if is_not_found(&e) => state.remove(&id),
                    Err(e) => return Err(e.into()),
                }
                publish(state, desired);
            }
            Some((id, status)) = results.recv() => {
                if state.probe_result(id, status) {
                    publish(state, desired);
                }
            }
            _ = resync_tick.tick(), if resync.is_some() => {
                state.replace_all(list_all(docker).await?);
                publish(state, desired);
            }
        }
    }
}

/// Container events that can change registration (exec and attach events cannot).
fn relevant(action: &str) -> bool {
    let verb = action.split(':').next().unwrap_or(action);
    matches!(
        verb,
        "start"
            | "restart"
            | "die"
            | "stop"
            | "kill"
            | "destroy"
            | "pause"
            | "unpause"
            | "rename"
            | "update"
            | "health_status"
            | "connect"
            | "disconnect"
    )
}

fn publish(state: &mut HostState, desired: &watch::Sender<Desired>) {
    let wanted = state.desired();
    desired.send_if_modified(|d| {
        if *d == wanted {
            return false;
        }
        *d = wanted;
        true
    });
}

#[cfg(test)]
mod tests {
    use super::relevant;

    #[test]
    fn health_and_lifecycle_events_count_exec_does_not() {
        assert!(relevant("health_status: unhealthy"));
        assert!(relevant("die"));
        assert!(!relevant("exec_start: sh -c true"));
        assert!(!relevant("attach"));
    }
}
