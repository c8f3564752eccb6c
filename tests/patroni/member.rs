//! One Patroni member: its configuration, its processes (Patroni and the PostgreSQL it starts),
//! its REST API and its watchdog.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::json;

use super::sql::PG_BIN;
use super::watchdog::{Leaders, Watchdog};

/// The Patroni cluster name: the leader key is `service/<SCOPE>/leader`.
pub const SCOPE: &str = "census-e2e";

/// The unprivileged account PostgreSQL and Patroni run as (PostgreSQL refuses root).
#[derive(Clone, Copy)]
pub struct PgUser {
    pub uid: u32,
    pub gid: u32,
}

impl PgUser {
    /// The `postgres` account that Debian's postgresql-common creates.
    pub fn lookup() -> Option<PgUser> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
        let fields: Vec<&str> = line.split(':').collect();
        Some(PgUser { uid: fields.get(2)?.parse().ok()?, gid: fields.get(3)?.parse().ok()? })
    }
}

/// The member's processes, shared with its watchdog (whose reset kills them).
struct Procs {
    data_dir: PathBuf,
    /// Patroni's pid, also its process group; 0 when not running.
    patroni: AtomicI32,
}

impl Procs {
    /// The running postmaster of this data dir and its process group (Patroni starts it in a
    /// session of its own, so its backends are not in Patroni's group).
    fn postmaster(&self) -> Option<(i32, i32)> {
        let pidfile = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        let pid: i32 = pidfile.lines().next()?.trim().parse().ok()?;
        // A stale pid file after a crash may name a reused pid: only a postgres on this data dir
        // counts (a zombie has an empty command line).
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let dir = self.data_dir.as_os_str().as_bytes();
        cmdline.windows(dir.len()).any(|w| w == dir).then_some(())?;
        Some((pid, process_group(pid)?))
    }

    /// SIGKILL to Patroni, its helpers, the postmaster and its backends: a machine reset.
    fn kill_all(&self) {
        let patroni = self.patroni.load(Ordering::SeqCst);
        if patroni > 0 {
            let _ = killpg(Pid::from_raw(patroni), Signal::SIGKILL);
        }
        if let Some((pid, group)) = self.postmaster() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            if group > 1 && Some(group) != process_group(std::process::id() as i32) {
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            }
        }
    }
}

/// The process group of `pid`, from /proc (the field after state and parent).
fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()
}

pub struct Member {
    pub name: String,
    pub pg_port: u16,
    pub api_port: u16,
    /// The census HTTP address this member uses as its DCS.
    pub dcs: String,
    pub dir: PathBuf,
    user: PgUser,
    child: Option<Child>,
    procs: Arc<Procs>,
    pub watchdog: Watchdog,
}

impl Member {
    /// Writes the configuration under `root/<name>`; `start` runs it.
    pub fn new(name: &str, root: &Path, dcs: &str, user: PgUser, leaders: Arc<Leaders>) -> Member {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("member dir");
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).expect("chown member dir");
        let procs = Arc::new(Procs { data_dir: dir.join("data"), patroni: AtomicI32::new(0) });
        let reset = {
            let procs = procs.clone();
            move || procs.kill_all()
        };
        let watchdog = Watchdog::create(name, &dir.join("watchdog"), (user.uid, user.gid), leaders, reset);
        let member = Member {
            name: name.into(),
            pg_port: census_e2e::free_port(),
            api_port: census_e2e::free_port(),
            dcs: dcs.into(),
            dir,
            user,
            child: None,
            procs,
            watchdog,
        };
        // JSON is YAML: Patroni reads it as its configuration file.
        let config = serde_json::to_vec_pretty(&member.config()).expect("config json");
        std::fs::write(member.dir.join("patroni.yml"), config).expect("write patroni.yml");
        member
    }

    fn config(&self) -> serde_json::Value {
        let dir = self.dir.display().to_string();
        json!({
            "scope": SCOPE,
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": format!("127.0.0.1:{}", self.api_port),
                        "connect_address": format!("127.0.0.1:{}", self.api_port)},
            "consul": {"host": self.dcs, "register_service": false},
            "bootstrap": {
                // Patroni asks Consul for a session TTL of ttl/2 (Consul's minimum is 10 s, and
                // Consul only expires a session after twice its TTL), so 20 is the shortest ttl;
                // loop_wait + 2 x retry_timeout must stay below it.
                "dcs": {"ttl": 20, "loop_wait": 2, "retry_timeout": 5,
                        "maximum_lag_on_failover": 16_777_216,
                        "postgresql": {"use_pg_rewind": true, "parameters": {"wal_log_hints": "on"}}},
                "initdb": [{"encoding": "UTF8"}],
                "pg_hba": ["local all all trust",
                           "host replication replicator 127.0.0.1/32 trust",
                           "host all all 127.0.0.1/32 trust"]
            },
            "postgresql": {
                "listen": format!("127.0.0.1:{}", self.pg_port),
                "connect_address": format!("127.0.0.1:{}", self.pg_port),
                "data_dir": format!("{dir}/data"),
                "bin_dir": PG_BIN,
                "pgpass": format!("{dir}/pgpass"),
                "authentication": {"superuser": {"username": "postgres"},
                                   "replication": {"username": "replicator"}},
                "parameters": {"unix_socket_directories": dir},
                // A node that comes back after a failover rejoins as a replica even when its
                // timeline cannot be rewound.
                "remove_data_directory_on_rewind_failure": true,
                "remove_data_directory_on_diverged_timelines": true
            },
            // Without it a killed Patroni would leave its primary running next to the new one.
            "watchdog": {"mode": "required", "driver": "testing", "device": format!("{dir}/watchdog")}
        })
    }

    /// Starts Patroni (Debian's, on /usr/bin/python3) as the PostgreSQL user.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("patroni.log"))
            .expect("patroni log");
        let child = Command::new("/usr/bin/patroni")
            .arg(self.dir.join("patroni.yml"))
            .current_dir(&self.dir)
            .uid(self.user.uid)
            .gid(self.user.gid)
            // Its own group: a reset kills Patroni with its helpers (pg_basebackup, pg_rewind).
            .process_group(0)
            .env("HOME", &self.dir)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn patroni");
        self.procs.patroni.store(child.id() as i32, Ordering::SeqCst);
        self.child = Some(child);
    }

    /// SIGKILL to the Patroni process alone: its PostgreSQL keeps running.
    pub fn kill_patroni(&mut self) {
        self.procs.patroni.store(0, Ordering::SeqCst);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL to the postmaster alone (its backends exit when they notice); false if none ran.
    pub fn kill_postmaster(&self) -> bool {
        match self.procs.postmaster() {
            Some((pid, _)) => kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok(),
            None => false,
        }
    }

    /// Whether a postmaster runs on this member's data dir.
    pub fn postgres_running(&self) -> bool {
        self.procs.postmaster().is_some()
    }

    /// The status code of `GET /<path>` on the REST API (`primary`: 200 only on the leader,
    /// `replica`: 200 on a running replica); None if the API does not answer.
    pub async fn api_status(&self, http: &reqwest::Client, path: &str) -> Option<u16> {
        let url = format!("http://127.0.0.1:{}/{path}", self.api_port);
        http.get(url).send().await.ok().map(|r| r.status().as_u16())
    }

    /// The last lines of Patroni's log (which also holds PostgreSQL's).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("patroni.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.procs.kill_all();
        self.kill_patroni();
    }
}
