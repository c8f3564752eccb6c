//! The seed documents (/work/shared/seeds, Chinese blog posts about Consul), their command lines
//! run as written with `census` for `consul`, asserting what each post says its reader sees.
//! Deviations are said where they are made: temp dirs for absolute paths, and free ports where
//! Consul's fixed ones (8500, 8600, 8300) could be taken on a machine that runs other tests.

#[path = "seeds/image.rs"]
mod image;
#[path = "seeds/process.rs"]
mod process;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use census_e2e::{eventually, free_dual_port, free_port};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use nix::sys::signal::Signal;

use self::image::{Image, docker, engine_answers, host_ip};
use self::process::{Agent, Api, census, refused, words};

const EXIT: Duration = Duration::from_secs(20);

/// Free ports for one agent, and the flags that give them to it.
struct Ports {
    http: u16,
    dns: u16,
    server: u16,
    serf: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports { http: free_port(), dns: free_dual_port(), server: free_port(), serf: free_dual_port() }
    }

    fn flags(&self) -> Vec<String> {
        words(&format!(
            "-http-port={} -dns-port={} -server-port={} -serf-lan-port={}",
            self.http, self.dns, self.server, self.serf
        ))
    }

    fn api(&self) -> Api {
        Api::new(&format!("127.0.0.1:{}", self.http))
    }
}

/// A seed's line (after `consul`), then the port flags.
fn line(text: &str, ports: &Ports) -> Vec<String> {
    let mut args = words(text);
    args.extend(ports.flags());
    args
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_000_the_consulserver_command_serves_its_ui_dir_and_bootstraps_alone() {
    // docker-compose.yml, service consulserver (image progrium/consul, whose entrypoint adds
    // `agent`): `command: -server -ui-dir /ui -data-dir /tmp/consul -bootstrap-expect 1`.
    // Deviations: `agent` is written out (`docker run census -server ...` is no command for
    // census); /ui is the repository's UI files (progrium/consul ships its UI at /ui); /tmp/consul
    // is a temp dir. The compose flow itself (`docker-compose up --scale web=3`) is docker.rs.
    let tmp = tempdir();
    let ui = repo().join("controller/ui");
    let text = format!(
        "agent -server -ui-dir {} -data-dir {} -bootstrap-expect 1",
        ui.display(),
        tmp.path().join("consul").display()
    );
    let ports = Ports::new();
    let _agent = Agent::start(census(tmp.path(), &line(&text, &ports), &[]), &tmp.path().join("log"));
    let api = ports.api();
    api.wait_ready().await;
    let (status, page) = api.get("/ui/").await.expect("the UI answers");
    let index = std::fs::read_to_string(ui.join("index.html")).expect("index.html");
    assert_eq!((status, page), (200, index), "the UI comes from -ui-dir");
    // The lb's template (seeds 000 and 003) routes to the consul service at the server port.
    let consul = api.instances("consul").await;
    assert_eq!(consul[0]["ServicePort"], ports.server);
}

fn resolver(port: u16) -> TokioResolver {
    let servers = NameServerConfigGroup::from_ips_clear(&[IpAddr::V4(Ipv4Addr::LOCALHOST)], port, true);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    TokioResolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], servers),
        TokioConnectionProvider::default(),
    )
    .with_options(opts)
    .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_001_a_definition_in_the_config_dir_is_synced_and_found_by_http_and_dns() {
    // echo '{"service": {"name": "web", "tags": ["rails"], "port": 80}}' | sudo tee /etc/consul.d/web.json
    // consul agent -dev -config-dir=/etc/consul.d
    // 成功的标志就是看到类似 "[INFO] agent: Synced service 'web'"
    // dig @127.0.0.1 -p 8600 web.service.consul ; curl http://localhost:8500/v1/catalog/service/web
    // Ctrl-C 可以让Consul平稳的退出
    // Deviation: /etc/consul.d is a temp dir.
    let tmp = tempdir();
    let dir = tmp.path().join("consul.d");
    std::fs::create_dir(&dir).expect("mkdir");
    let web = r#"{"service": {"name": "web", "tags": ["rails"], "port": 80}}"#;
    std::fs::write(dir.join("web.json"), format!("{web}\n")).expect("write web.json");
    let ports = Ports::new();
    let text = format!("agent -dev -config-dir={}", dir.display());
    let mut agent = Agent::start(census(tmp.path(), &line(&text, &ports), &[]), &tmp.path().join("log"));
    agent.wait_log("agent: Synced service 'web'").await;

    let api = ports.api();
    let web = api.instances("web").await;
    assert_eq!(
        (web.len(), &web[0]["ServicePort"], &web[0]["ServiceTags"]),
        (1, &80.into(), &["rails"].into())
    );
    let answer = resolver(ports.dns).lookup_ip("web.service.consul.").await.expect("web.service.consul");
    assert_eq!(answer.iter().collect::<Vec<_>>(), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);

    agent.signal(Signal::SIGINT);
    assert!(agent.wait_exit(EXIT).success(), "Ctrl-C stops the agent cleanly");
    assert!(agent.log().contains("Caught signal: interrupt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_002_docker_run_with_consul_local_config_serves_the_ui_and_keeps_its_node_on_ctrl_c() {
    // docker run -d --net=host --name consul -h consul \
    //   -e 'CONSUL_LOCAL_CONFIG={"skip_leave_on_interrupt": true}' \
    //   consul agent -server -client $HOST_IP -ui -bootstrap
    // Deviations: the image is census:TAG built here; the container name is unique; the port
    // flags are added (with --net=host the agent shares this machine's ports).
    assert!(engine_answers(), "no Docker engine answers `docker info`: this seed runs the census image");
    let mut image = Image::build(&format!("seeds-{}", std::process::id()));
    let (name, ip, ports) = (format!("census-seed-002-{}", std::process::id()), host_ip(), Ports::new());
    let mut args = words("-d --net=host -h consul");
    args.extend([
        "-e".into(),
        r#"CONSUL_LOCAL_CONFIG={"skip_leave_on_interrupt": true}"#.into(),
        image.name.clone(),
    ]);
    args.extend(line(&format!("agent -server -client {ip} -ui -bootstrap"), &ports));
    image.run(&name, &args);

    let api = Api::new(&format!("{ip}:{}", ports.http));
    Image::wait_ready(&name, &api).await;
    let (status, page) = api.get("/ui/").await.expect("the UI answers");
    assert!(status == 200 && page.contains("<html"), "the UI at http://$HOST_IP:8500/ui/: {status}");
    api.put("/v1/agent/service/register", r#"{"name": "python-micro-service", "port": 5000}"#).await;

    // Ctrl-C (SIGINT) with skip_leave_on_interrupt: the node does not leave, so after a restart
    // (same container, same data dir) its services are still in the catalog.
    docker(&["kill", "-s", "INT", &name]);
    Image::wait_stopped(&name, EXIT);
    assert!(Image::logs(&name).contains("Graceful shutdown disabled"), "{}", Image::logs(&name));
    docker(&["start", &name]);
    Image::wait_ready(&name, &api).await;
    assert_eq!(api.instances("python-micro-service").await.len(), 1, "the node did not leave");
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_002_consul_local_config_is_strict_and_decides_whether_ctrl_c_leaves() {
    // The same CONSUL_LOCAL_CONFIG given to the binary: an unknown key is refused, naming it and
    // the variable; with skip_leave_on_interrupt false, Ctrl-C leaves (the node's services go).
    let tmp = tempdir();
    let ports = Ports::new();
    let text = format!("agent -server -bootstrap -data-dir={}", tmp.path().join("data").display());
    let typo = [("CONSUL_LOCAL_CONFIG", r#"{"skip_leave_on_interupt": true}"#)];
    let err = refused(census(tmp.path(), &line(&text, &ports), &typo));
    assert!(
        err.contains("$CONSUL_LOCAL_CONFIG") && err.contains("invalid config key skip_leave_on_interupt"),
        "{err}"
    );

    let leave = [("CONSUL_LOCAL_CONFIG", r#"{"skip_leave_on_interrupt": false}"#)];
    let log = tmp.path().join("log");
    let mut agent = Agent::start(census(tmp.path(), &line(&text, &ports), &leave), &log);
    let api = ports.api();
    api.wait_ready().await;
    api.put("/v1/agent/service/register", r#"{"name": "web", "port": 80}"#).await;
    agent.signal(Signal::SIGINT);
    assert!(agent.wait_exit(EXIT).success());
    assert!(agent.log().contains("Graceful exit completed"), "{}", agent.log());
    let _again = Agent::start(census(tmp.path(), &line(&text, &ports), &leave), &tmp.path().join("log2"));
    api.wait_ready().await;
    assert!(api.instances("web").await.is_empty(), "the node left: its services went with it");
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_003_agent_flags_write_the_log_and_pid_files_and_serve_the_ui() {
    // bin/consul agent -bind="172.20.20.3" -bootstrap-expect=1 -client="0.0.0.0" -data-dir="data/"
    //   -log-file="logs/consul.log" -pid-file="run/consul.pid" -server -ui -ui-content-path="ui/"
    // Deviation: -bind is 127.0.0.1 (172.20.20.3 is the author's machine). Like Consul, census
    // does not create logs/ or run/: it refuses to start without logs/, and runs once they exist.
    let tmp = tempdir();
    let ports = Ports::new();
    let text = "agent -bind=127.0.0.1 -bootstrap-expect=1 -client=0.0.0.0 -data-dir=data/ \
                -log-file=logs/consul.log -pid-file=run/consul.pid -server -ui -ui-content-path=ui/";
    let err = refused(census(tmp.path(), &line(text, &ports), &[]));
    assert!(err.contains("Failed to setup logging") && err.contains("logs"), "{err}");

    for dir in ["logs", "run"] {
        std::fs::create_dir(tmp.path().join(dir)).expect("mkdir");
    }
    let mut agent = Agent::start(census(tmp.path(), &line(text, &ports), &[]), &tmp.path().join("out"));
    let api = ports.api();
    api.wait_ready().await;
    let pid_file = tmp.path().join("run/consul.pid");
    assert_eq!(std::fs::read_to_string(&pid_file).expect("pid file"), agent.pid().to_string());
    // The HTTP port answers before the agent logs that it runs: wait for the line.
    let log_file = tmp.path().join("logs/consul.log");
    census_e2e::eventually(EXIT, "the log file to say the agent runs", || async {
        std::fs::read_to_string(&log_file).ok().filter(|l| l.contains("census agent running"))
    })
    .await;
    assert!(tmp.path().join("data/node-id").exists(), "the Raft data is under data/");
    let (status, page) = api.get("/ui/").await.expect("the UI answers");
    assert!(status == 200 && page.contains("<html"), "the UI at /ui/: {status}");

    // The post's curl lines: register nginx, find it in the catalog, then deregister everything.
    let nginx = r#"{"name": "nginx","port": 8080,"tags": ["web"],"checks": [{"http": "http://127.0.0.1:8080/","interval": "5s"}]}"#;
    api.put("/v1/agent/service/register", nginx).await;
    let found = api.instances("nginx").await;
    assert_eq!((&found[0]["ServicePort"], &found[0]["ServiceTags"]), (&8080.into(), &["web"].into()));
    let services = api.json("/v1/agent/services").await;
    for id in services.as_object().expect("services by ID").keys() {
        api.put(&format!("/v1/agent/service/deregister/{id}"), "").await;
    }
    assert!(api.instances("nginx").await.is_empty());

    agent.signal(Signal::SIGTERM);
    assert!(agent.wait_exit(EXIT).success());
    assert!(!pid_file.exists(), "the pid file is removed on exit");
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_004_three_servers_join_list_members_and_reload_a_definition() {
    // consul agent -server -bootstrap-expect=3 -data-dir=/var/consul -node=NODE_NAME -bind=0.0.0.0 \
    //     -enable-script-checks=true -config-dir=/etc/consul.d      (on each of three nodes)
    // consul join ip1 ip2 ip3 ; consul members
    // {"service": {"name": "redis.db", "tags": ["db"], "port": 80}} ; curl .../v1/catalog/service/redis
    // 可以通过修改配置文件，然后使用 consul reload 重新加载配置
    // Deviations: the three nodes run on this machine, so each has its own data dir and ports,
    // and `join` names each server port (ip:port).
    let tmp = tempdir();
    let conf = tmp.path().join("consul.d");
    std::fs::create_dir(&conf).expect("mkdir");
    let redis =
        |port: u16| format!(r#"{{"service": {{"name": "redis.db", "tags": ["db"], "port": {port}}}}}"#);
    std::fs::write(conf.join("redis.json"), redis(80)).expect("write");
    let ports: Vec<Ports> = (0..3).map(|_| Ports::new()).collect();
    let _agents: Vec<Agent> = (0..3)
        .map(|i| {
            let data = tmp.path().join(format!("n{i}"));
            let text = format!(
                "agent -server -bootstrap-expect=3 -data-dir={} -node=n{i} -bind=0.0.0.0 \
                 -enable-script-checks=true -config-dir={}",
                data.display(),
                conf.display()
            );
            Agent::start(
                census(tmp.path(), &line(&text, &ports[i]), &[]),
                &tmp.path().join(format!("n{i}.log")),
            )
        })
        .collect();
    // The post runs `consul join` once the three agents run: each answers its HTTP port (bound
    // after its Raft port) before the join is sent.
    for p in &ports {
        let api = p.api();
        eventually(Duration::from_secs(20), "the agent to answer HTTP", || async {
            api.get("/v1/agent/self").await.map(drop)
        })
        .await;
    }
    let http0 = format!("-http-addr=127.0.0.1:{}", ports[0].http);
    let mut join = vec!["join".to_string(), http0.clone()];
    join.extend(ports.iter().map(|p| format!("127.0.0.1:{}", p.server)));
    let out = census(tmp.path(), &join, &[]).output().expect("census join");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let api = ports[0].api();
    api.wait_ready().await;
    let members = census(tmp.path(), &["members".to_string(), http0.clone()], &[]).output().expect("members");
    let listed = String::from_utf8_lossy(&members.stdout).into_owned();
    assert!(["n0", "n1", "n2"].iter().all(|n| listed.contains(n)), "{listed}");
    eventually(Duration::from_secs(20), "redis.db on the three nodes", || async {
        (api.instances("redis.db").await.len() == 3).then_some(())
    })
    .await;
    assert!(
        api.instances("redis").await.is_empty(),
        "the post's `redis` query finds nothing: it is redis.db"
    );

    std::fs::write(conf.join("redis.json"), redis(6379)).expect("edit");
    let out = census(tmp.path(), &["reload".to_string(), http0], &[]).output().expect("census reload");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let n0 = api.instances("redis.db").await.into_iter().find(|e| e["Node"] == "n0").expect("n0's instance");
    assert_eq!(n0["ServicePort"], 6379, "reloaded at once on the node told to");
}
