//! Harness for the end-to-end tests: real `census` processes on loopback.

pub mod backend;
pub mod bench;
pub mod browser;
pub mod chaos;
pub mod disk_faults;
pub mod fake_kube;
pub mod kube_real;
pub mod linearizability;
pub mod netns;
pub mod nginx;
pub mod routes;
pub mod sidecar;
pub mod write_gaps;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use census_client::{Client, QueryOptions};

/// The `census` binary built next to this test binary (`cargo build` puts both in target/debug).
pub fn census_bin() -> PathBuf {
    if let Ok(path) = std::env::var("CENSUS_BIN") {
        return PathBuf::from(path);
    }
    // Test binaries live in target/debug/deps, the harness's own binaries in target/debug.
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("binary dir");
    let bin =
        if dir.ends_with("deps") { dir.parent().unwrap_or(dir).join("census") } else { dir.join("census") };
    assert!(bin.exists(), "{} not found: run `cargo build --workspace --bins` first", bin.display());
    bin
}

/// An HTTP client for tests: a request that gets no answer fails after 30 s instead of hanging
/// the run (a hung server is a failure to report, not a CI timeout).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client with rustls")
}

/// The Python of the tests: the virtualenv `scripts/py-consul-suite.sh` prepares (py-consul,
/// pytest), apart from the system's, where Patroni needs Debian's python3-consul.
pub fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: the test command (bash scripts/test.sh) prepares it",
        venv.display()
    );
    venv
}

/// The `census-sidecar` binary built next to `census`.
pub fn sidecar_bin() -> PathBuf {
    if let Ok(path) = std::env::var("CENSUS_SIDECAR_BIN") {
        return PathBuf::from(path);
    }
    census_bin().with_file_name("census-sidecar")
}

/// Ports handed to test processes come from below the kernel's ephemeral range (32768-60999 on
/// Linux): a port taken from that range with `bind(0)` and released can be reused for an outgoing
/// connection before the agent binds it, and a 3-server cluster with `-bootstrap-expect=3` then
/// never elects a leader.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

static NEXT_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A TCP port on loopback that is free now and that no other call in this process returns.
pub fn free_port() -> u16 {
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    // Test binaries run one after another; start each at a different place anyway.
    let seed = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = PORT_RANGE.start + ((seed + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORT_RANGE:?}");
}

/// A port free for both TCP and UDP on loopback (for the DNS interface).
pub fn free_dual_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One `census agent` process.
pub struct Agent {
    pub name: String,
    pub http_port: u16,
    pub server_port: u16,
    pub dns_port: u16,
    /// LAN gossip (UDP).
    pub serf_port: u16,
    /// `-server`; a client agent when false.
    pub server: bool,
    pub data_dir: PathBuf,
    pub extra: Vec<String>,
    /// Environment of the process beyond the test's own (KUBECONFIG, say).
    pub env: Vec<(String, String)>,
    /// Run inside this network namespace, at this address (with Consul's default ports), rather
    /// than on loopback.
    pub netns: Option<(String, String)>,
    child: Option<Child>,
}

impl Agent {
    pub fn new(name: &str, data_dir: PathBuf, extra: Vec<String>) -> Agent {
        Agent {
            name: name.into(),
            http_port: free_port(),
            server_port: free_port(),
            dns_port: free_dual_port(),
            serf_port: free_dual_port(),
            server: true,
            data_dir,
            extra,
            env: Vec::new(),
            netns: None,
            child: None,
        }
    }

    /// An agent in network namespace `ns` at `ip`, on Consul's default ports.
    pub fn in_netns(mut self, ns: &str, ip: &str) -> Agent {
        self.netns = Some((ns.to_string(), ip.to_string()));
        (self.http_port, self.server_port, self.serf_port, self.dns_port) = (8500, 8300, 8301, 8600);
        self
    }

    /// The address it binds and advertises.
    pub fn ip(&self) -> &str {
        self.netns.as_ref().map_or("127.0.0.1", |(_, ip)| ip.as_str())
    }

    /// A client agent (no `-server`) that joins through `join` (a server's Raft address).
    pub fn client_agent(name: &str, data_dir: PathBuf, join: &str, extra: Vec<String>) -> Agent {
        let mut agent = Agent::new(name, data_dir, extra);
        agent.server = false;
        agent.extra.push(format!("-retry-join={join}"));
        agent
    }

    pub fn raft_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.server_port)
    }

    pub fn http_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.http_port)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.http_addr()).expect("client")
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        std::fs::create_dir_all(&self.data_dir).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("agent.log"))
            .expect("log file");
        // `ip netns exec` and setpriv exec what follows: the child is census itself. setpriv's
        // parent-death signal kills it with the test thread that started it, even when the test
        // process is killed (a hung test, an interrupted run) and no Drop runs.
        let mut cmd = match &self.netns {
            Some((ns, _)) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "setpriv"]);
                cmd
            }
            None => Command::new("setpriv"),
        };
        cmd.args(["--pdeathsig", "KILL", "--"]).arg(census_bin());
        cmd.arg("agent")
            .args(self.server.then_some("-server"))
            .arg(format!("-bind={}", self.ip()))
            .arg(format!("-client={}", self.ip()))
            .arg(format!("-node={}", self.name))
            .arg(format!("-http-port={}", self.http_port))
            .arg(format!("-server-port={}", self.server_port))
            .arg(format!("-serf-lan-port={}", self.serf_port))
            .arg(format!("-dns-port={}", self.dns_port))
            .arg(format!("-data-dir={}", self.data_dir.display()))
            .args(&self.extra)
            .env("RUST_LOG", "info,openraft=warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn census agent"));
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit by itself; false if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(child) = self.child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until this agent has registered its own node (its `consul` service is in the
    /// catalog): it has a leader, answers reads, and sessions can be made for its node.
    pub async fn wait_registered(&self) {
        let client = self.client();
        eventually(Duration::from_secs(20), "the node to register itself", || async {
            client
                .catalog_service("consul", &QueryOptions::default())
                .await
                .ok()
                .filter(|(s, _)| s.iter().any(|e| e.node == self.name))
        })
        .await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `PUT path` with an optional JSON body; panics unless the answer is 2xx.
pub async fn put(client: &Client, path: &str, body: Option<serde_json::Value>) {
    let body = body.map(|b| serde_json::to_vec(&b).expect("json"));
    let (status, _, bytes) = client.raw(reqwest::Method::PUT, path, &[], body, None).await.expect("request");
    assert!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&bytes));
}

/// One server that bootstraps alone (plus `extra` flags), started and registered.
pub async fn single_server(name: &str, extra: &[&str]) -> (Agent, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["-bootstrap-expect=1".to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut agent = Agent::new(name, dir.path().join(name), args);
    agent.start();
    agent.wait_registered().await;
    (agent, dir)
}

/// A Prometheus gauge of the agent at `addr` (`None` while it does not answer).
pub async fn gauge(addr: &str, name: &str) -> Option<f64> {
    let url = format!("http://{addr}/v1/agent/metrics?format=prometheus");
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).and_then(|v| v.parse().ok())
}

/// Waits until `check` returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        // A check that never answers (a request to a hung server) fails the wait at its deadline
        // instead of hanging the test run.
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        match tokio::time::timeout(left, check()).await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(_) => panic!("timed out after {timeout:?} waiting for {what} (a check did not answer)"),
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Several servers on loopback that form one cluster with `-bootstrap-expect`.
pub struct Cluster {
    pub agents: Vec<Agent>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[]).await
    }

    /// `n` servers, each also given the flags `extra`.
    pub async fn start_with(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_configured(n, extra, |_, _| {}).await
    }

    /// `n` servers given the flags `extra`; `configure` sees each agent (by index) before it starts.
    pub async fn start_configured(
        n: usize,
        extra: &[&str],
        configure: impl Fn(usize, &mut Agent),
    ) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let mut agents: Vec<Agent> = (0..n)
            .map(|i| Agent::new(&format!("node{i}"), dir.path().join(format!("node{i}")), extra.clone()))
            .collect();
        let addrs: Vec<String> = agents.iter().map(Agent::raft_addr).collect();
        for (i, agent) in agents.iter_mut().enumerate() {
            agent.extra.push(format!("-bootstrap-expect={n}"));
            for (j, addr) in addrs.iter().enumerate() {
                if i != j {
                    agent.extra.push(format!("-retry-join={addr}"));
                }
            }
            configure(i, agent);
            agent.start();
        }
        let cluster = Cluster { agents, _dir: dir };
        cluster.wait_for_leader(Duration::from_secs(30)).await;
        cluster
    }

    /// Index of the agent that is leader, as a running agent reports it.
    pub async fn leader(&self) -> Option<usize> {
        for agent in self.agents.iter().filter(|a| a.is_running()) {
            if let Ok(addr) = agent.client().status_leader().await
                && let Some(i) = self.agents.iter().position(|a| a.raft_addr() == addr)
            {
                return Some(i);
            }
        }
        None
    }

    /// Waits for a leader; on timeout, panics with every agent's ports and log tail.
    pub async fn wait_for_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader().await {
                return leader;
            }
            assert!(Instant::now() < deadline, "no leader after {timeout:?}\n{}", self.diagnostics());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Each agent's ports, whether its process still runs, and the end of its log.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for agent in &self.agents {
            let log = std::fs::read_to_string(agent.data_dir.join("agent.log")).unwrap_or_default();
            // Backtrace frames (indented) would fill the tail and hide the panic above them.
            let tail: Vec<&str> = log.lines().rev().filter(|l| !l.starts_with(' ')).take(15).collect();
            out.push_str(&format!(
                "--- {} http {} raft {} dns {} running {}\n",
                agent.name,
                agent.http_port,
                agent.server_port,
                agent.dns_port,
                agent.is_running()
            ));
            for line in tail.iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Any running agent other than `not`.
    pub fn other_than(&self, not: usize) -> usize {
        (0..self.agents.len())
            .find(|i| *i != not && self.agents[*i].is_running())
            .expect("another running agent")
    }
}

/// Runs `dig @127.0.0.1 -p PORT ARGS…` and returns its output.
pub fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg("@127.0.0.1")
        .arg(format!("-p{port}"))
        .args(["+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig not found: install dnsutils (scripts/test.sh does)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
