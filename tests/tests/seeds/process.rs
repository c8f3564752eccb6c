//! A `census` command line run as a seed writes it: its own working directory, its log in a
//! file, signals by PID, and the HTTP API asked as the seeds ask it (curl: plain JSON).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use census_e2e::{census_bin, eventually};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// Config the test process may have in its environment and must not leak into an agent.
const AGENT_ENV: [&str; 3] = ["CONSUL_LOCAL_CONFIG", "CENSUS_LOCAL_CONFIG", "CENSUS_DATA_DIR"];

/// `census ARGS` in `cwd`, with `env` on top of a clean agent environment.
pub fn census(cwd: &Path, args: &[String], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(census_bin());
    cmd.current_dir(cwd).args(args).env("RUST_LOG", "info,openraft=warn").env("RUST_BACKTRACE", "0");
    for var in AGENT_ENV {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Words to arguments, as the shell splits a seed's line (no quoting needed in the seeds used).
pub fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// A running `census agent`, killed on drop.
pub struct Agent {
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    /// Starts `cmd` with stdout and stderr going to `log`.
    pub fn start(mut cmd: Command, log: &Path) -> Agent {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err)).spawn().expect("spawn census");
        Agent { child: Some(child), log: log.to_path_buf() }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid() as i32), signal).expect("signal the agent");
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log shows `text`.
    pub async fn wait_log(&self, text: &str) {
        eventually(Duration::from_secs(20), &format!("{text:?} in the log"), || async {
            self.log().contains(text).then_some(())
        })
        .await;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("agent log {}:\n{}", self.log.display(), self.log());
        }
    }
}

/// Runs a command that must fail at once; its stderr.
pub fn refused(mut cmd: Command) -> String {
    let out = cmd.output().expect("run census");
    assert!(!out.status.success(), "expected a refusal; stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The HTTP API at `addr`, asked as curl would.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(addr: &str) -> Api {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("http client");
        Api { base: format!("http://{addr}"), http }
    }

    /// `GET path`: status and body, `None` while nothing answers.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await.ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    }

    /// `GET path` as JSON; panics unless it answers 200.
    pub async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await.expect("the agent answers");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// `curl -X PUT [-d BODY] path`; panics unless it answers 200.
    pub async fn put(&self, path: &str, body: &str) {
        let resp = self.http.put(format!("{}{path}", self.base)).body(body.to_string()).send().await;
        let resp = resp.expect("the agent answers");
        let status = resp.status();
        assert!(status.is_success(), "{path}: {status} {}", resp.text().await.unwrap_or_default());
    }

    /// Whether the agent knows a leader and has registered its own node.
    pub async fn ready(&self) -> bool {
        let Some((200, body)) = self.get("/v1/catalog/service/consul").await else { return false };
        serde_json::from_str::<Vec<Value>>(&body).is_ok_and(|instances| !instances.is_empty())
    }

    /// Waits until the agent is [ready](Api::ready).
    pub async fn wait_ready(&self) {
        eventually(Duration::from_secs(30), "a leader and the node's `consul` service", || async {
            self.ready().await.then_some(())
        })
        .await;
    }

    /// `GET /v1/catalog/service/NAME`: the instances.
    pub async fn instances(&self, service: &str) -> Vec<Value> {
        match self.json(&format!("/v1/catalog/service/{service}")).await {
            Value::Array(items) => items,
            other => panic!("not a list: {other}"),
        }
    }
}
