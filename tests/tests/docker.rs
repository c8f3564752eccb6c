//! Seed 000 on the real Docker engine: docker/build.sh builds every image locally (nothing is
//! pulled), docker/compose.yml runs a census server, a census client agent for the Docker host
//! (the agent the register sidecar talks to, as registrator talks to its host's Consul agent), the
//! read-only Docker proxy, the register sidecar, three web containers and the nginx lb (which
//! reads the server). Fails, saying so, when no Docker engine answers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use census_client::types::ServiceEntry;
use census_client::{Client, QueryOptions};
use census_e2e::{eventually, free_port};

const SERVICE: &str = "my-web-server";
/// The client agent's node (`consul-agent -node=docker-host`): the registered instances are its.
const AGENT_NODE: &str = "docker-host";
const LEASE_TTL: Duration = Duration::from_secs(3);
const DEREGISTER_AFTER: Duration = Duration::from_secs(4);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// `docker compose` (v2) if present, else `docker-compose` (v1); `None` when neither runs.
fn compose_command() -> Option<Vec<String>> {
    let works = |argv: &[&str]| {
        Command::new(argv[0]).args(&argv[1..]).arg("version").output().is_ok_and(|o| o.status.success())
    };
    if works(&["docker", "compose"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else if works(&["docker-compose"]) {
        Some(vec!["docker-compose".into()])
    } else {
        None
    }
}

/// A running compose project; `down` and image removal on drop.
struct Demo {
    compose: Vec<String>,
    project: String,
    tag: String,
    env: Vec<(String, String)>,
    http_port: u16,
    lb_port: u16,
}

impl Demo {
    fn compose(&self, args: &[&str]) -> String {
        let file = repo().join("docker/compose.yml");
        run(Command::new(&self.compose[0])
            .args(&self.compose[1..])
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(file)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }

    /// Container names of a compose service, sorted.
    fn containers(&self, service: &str) -> Vec<String> {
        let out = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.Names}}",
        ]);
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let file = repo().join("docker/compose.yml");
        if std::thread::panicking() {
            let logs = Command::new(&self.compose[0])
                .args(&self.compose[1..])
                .args(["-p", &self.project, "-f"])
                .arg(&file)
                .args(["logs", "--no-color", "--tail", "40"])
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .output();
            if let Ok(out) = logs {
                eprintln!("compose logs:\n{}", String::from_utf8_lossy(&out.stdout));
            }
        }
        let _ = Command::new(&self.compose[0])
            .args(&self.compose[1..])
            .args(["-p", &self.project, "-f"])
            .arg(file)
            .args(["down", "-v", "--remove-orphans", "-t", "1"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output();
        for image in ["census", "census-sidecar", "census-web", "census-lb"] {
            let _ = Command::new("docker").args(["rmi", "-f", &format!("{image}:{}", self.tag)]).output();
        }
    }
}

fn ip_of(container: &str) -> String {
    docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container])
        .trim()
        .to_string()
}

async fn instances(client: &Client) -> Vec<ServiceEntry> {
    client.health_service(SERVICE, false, &QueryOptions::default()).await.map(|(e, _)| e).unwrap_or_default()
}

fn status_of(entry: &ServiceEntry, suffix: &str) -> String {
    let id = format!("service:{}{suffix}", entry.service.id);
    entry.checks.iter().find(|c| c.check_id == id).map(|c| c.status.clone()).unwrap_or_default()
}

/// `n` requests through the lb: (hostname answered, X-Upstream) each.
async fn through_lb(http: &reqwest::Client, port: u16, n: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let Ok(resp) = http.get(format!("http://127.0.0.1:{port}/")).send().await else { continue };
        let upstream =
            resp.headers().get("x-upstream").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = resp.text().await.unwrap_or_default().trim().to_string();
        seen.push((body, upstream));
    }
    seen
}

/// Waits until `n` requests through the lb never touch `ip` (with LB_MAX_FAILS=0 nginx tries
/// every configured server in turn, so a routed-to dead server shows in X-Upstream).
async fn wait_not_routed(http: &reqwest::Client, port: u16, ip: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    let needle = format!("{ip}:");
    eventually(timeout, &format!("the lb to stop routing to {ip}"), || async {
        let seen = through_lb(http, port, 6).await;
        (seen.len() == 6 && seen.iter().all(|(_, up)| !up.contains(&needle))).then_some(())
    })
    .await;
    start.elapsed()
}

#[tokio::test]
async fn seed_demo_on_docker_routes_follows_containers_and_survives_the_registrator() {
    assert!(
        Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success()),
        "no Docker engine answers `docker info`: the Docker demo test needs one"
    );
    let compose = compose_command()
        .expect("neither `docker compose` nor `docker-compose` is installed (scripts/test.sh installs it)");
    let tag = format!("e2e-{}", std::process::id());
    run(Command::new("bash").arg(repo().join("docker/build.sh")).env("TAG", &tag));
    let (http_port, lb_port) = (free_port(), free_port());
    let env = vec![
        ("CENSUS_TAG".to_string(), tag.clone()),
        ("CENSUS_HTTP_PORT".to_string(), http_port.to_string()),
        ("LB_PORT".to_string(), lb_port.to_string()),
        ("LEASE_TTL".to_string(), format!("{}s", LEASE_TTL.as_secs())),
        ("DEREGISTER_AFTER".to_string(), format!("{}s", DEREGISTER_AFTER.as_secs())),
        ("LB_MAX_FAILS".to_string(), "0".to_string()),
    ];
    let demo =
        Demo { compose, project: format!("censuse2e{}", std::process::id()), tag, env, http_port, lb_port };
    demo.compose(&["up", "-d", "--scale", "web=3"]);
    let client = Client::new(&format!("127.0.0.1:{}", demo.http_port)).expect("client");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("http");

    // Three healthy instances, and the lb reaches all three.
    let webs = demo.containers("web");
    assert_eq!(webs.len(), 3, "{webs:?}");
    eventually(Duration::from_secs(60), "three passing instances", || async {
        let passing = client.health_service(SERVICE, true, &QueryOptions::default()).await.ok()?.0;
        (passing.len() == 3).then_some(())
    })
    .await;
    let hostnames: BTreeSet<String> = webs
        .iter()
        .map(|w| docker(&["inspect", "-f", "{{.Config.Hostname}}", w]).trim().to_string())
        .collect();
    eventually(Duration::from_secs(20), "the lb to answer from all three", || async {
        let seen: BTreeSet<String> =
            through_lb(&http, demo.lb_port, 9).await.into_iter().map(|(b, _)| b).collect();
        (seen == hostnames).then_some(())
    })
    .await;
    let registered = instances(&client).await;
    let ids: BTreeSet<String> = registered.iter().map(|e| e.service.id.clone()).collect();
    assert_eq!(
        ids,
        webs.iter().map(|w| format!("docker-host:{w}:80")).collect(),
        "IDs are HOST:CONTAINER:PORT"
    );
    // The sidecar registers through the host's client agent, so the instances are that agent's
    // node, and the agent is a gossip member of type client (no Raft).
    let nodes: BTreeSet<&str> = registered.iter().map(|e| e.node.node.as_str()).collect();
    assert_eq!(nodes, BTreeSet::from([AGENT_NODE]), "instances belong to the client agent's node");
    assert_eq!(demo.containers("consul-agent").len(), 1);
    let members = client.agent_members().await.expect("members");
    let agent = members.iter().find(|m| m.name == AGENT_NODE);
    assert_eq!(
        agent.and_then(|m| m.tags.get("role")).map(String::as_str),
        Some("node"),
        "the client agent is a member: {members:?}"
    );

    // docker stop of one: out of the catalog and of nginx within 2 s.
    let (stopped, stopped_ip) = (webs[0].clone(), ip_of(&webs[0]));
    let t0 = Instant::now();
    docker(&["stop", "-t", "5", &stopped]);
    let stop_returned = t0.elapsed();
    eventually(Duration::from_secs(2), "the stopped instance to leave the catalog", || async {
        (instances(&client).await.len() == 2).then_some(())
    })
    .await;
    let removed = t0.elapsed();
    let unrouted =
        wait_not_routed(&http, demo.lb_port, &stopped_ip, Duration::from_secs(2).saturating_sub(removed))
            .await;
    eprintln!(
        "docker stop: returned {stop_returned:?}, deregistered {removed:?}, unrouted {:?}",
        removed + unrouted
    );

    // A web whose HEALTHCHECK fails stays registered, critical, and is not routed; it still runs.
    let (sick, sick_ip) = (webs[1].clone(), ip_of(&webs[1]));
    http.post(format!("http://{sick_ip}:80/health/fail")).send().await.expect("reach the container directly");
    eventually(Duration::from_secs(15), "the failing HEALTHCHECK to turn the instance critical", || async {
        let all = instances(&client).await;
        let e = all.iter().find(|e| e.service.id.contains(&sick))?;
        (status_of(e, ":health") == "critical").then_some(())
    })
    .await;
    wait_not_routed(&http, demo.lb_port, &sick_ip, Duration::from_secs(5)).await;
    let direct = http.get(format!("http://{sick_ip}:80/")).send().await.expect("direct").status();
    assert!(direct.is_success(), "the unhealthy container itself still answers");

    // The register sidecar dies: its instances go critical within the lease, then are removed.
    let registrator = demo.containers("registrator").remove(0);
    docker(&["kill", &registrator]);
    let killed = Instant::now();
    eventually(LEASE_TTL + Duration::from_secs(3), "leases to expire", || async {
        let all = instances(&client).await;
        (!all.is_empty() && all.iter().all(|e| status_of(e, "") == "critical")).then_some(())
    })
    .await;
    let critical_after = killed.elapsed();
    eventually(Duration::from_secs(20), "expired instances to be removed", || async {
        instances(&client).await.is_empty().then_some(())
    })
    .await;
    let removed_after = killed.elapsed();
    assert!(removed_after >= DEREGISTER_AFTER, "removed before the deregister interval: {removed_after:?}");
    eprintln!("registrator killed: critical after {critical_after:?}, removed after {removed_after:?}");

    // Restarted, it registers exactly the running containers, once each.
    let restarted = Instant::now();
    docker(&["start", &registrator]);
    let want: BTreeSet<String> = webs[1..].iter().map(|w| format!("docker-host:{w}:80")).collect();
    eventually(Duration::from_secs(20), "the running containers to be registered again", || async {
        let ids: Vec<String> = instances(&client).await.into_iter().map(|e| e.service.id).collect();
        (ids.len() == want.len() && ids.iter().cloned().collect::<BTreeSet<_>>() == want).then_some(())
    })
    .await;
    eprintln!("registrator restarted: reconciled after {:?}", restarted.elapsed());

    // A container starting: registered from its start event.
    let t0 = Instant::now();
    docker(&["start", &stopped]);
    let start_returned = t0.elapsed();
    eventually(Duration::from_secs(5), "the started container to be registered", || async {
        instances(&client).await.iter().any(|e| e.service.id.contains(&stopped)).then_some(())
    })
    .await;
    eprintln!("docker start: returned {start_returned:?}, registered {:?}", t0.elapsed());
    let all = instances(&client).await;
    assert_eq!(all.len(), 3, "no duplicates: {:?}", all.iter().map(|e| &e.service.id).collect::<Vec<_>>());

    // Event-to-catalog latency, measured from the docker command returning (the event is sent
    // before it returns) to the catalog's blocking query answering with the change.
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    for _ in 0..5 {
        stops.push(timed_change(&client, &stopped, false, || docker(&["stop", "-t", "5", &stopped])).await);
        starts.push(timed_change(&client, &stopped, true, || docker(&["start", &stopped])).await);
    }
    stops.sort();
    starts.sort();
    eprintln!("event-to-catalog over 5 rounds: stop -> removed {stops:?}; start -> registered {starts:?}");
}

/// Runs `action`, then follows the catalog with blocking queries until `container`'s instance
/// is present (or absent); the time from `action` returning to the answer.
async fn timed_change(
    client: &Client,
    container: &str,
    present: bool,
    action: impl FnOnce() -> String,
) -> Duration {
    let (_, meta) = client.health_service(SERVICE, false, &QueryOptions::default()).await.expect("health");
    action();
    let returned = Instant::now();
    let mut index = meta.last_index;
    loop {
        let (entries, meta) = client
            .health_service(SERVICE, false, &QueryOptions::blocking(index, Duration::from_secs(10)))
            .await
            .expect("blocking query");
        if entries.iter().any(|e| e.service.id.contains(container)) == present {
            return returned.elapsed();
        }
        assert!(returned.elapsed() < Duration::from_secs(10), "{container} never changed");
        index = meta.last_index;
    }
}
