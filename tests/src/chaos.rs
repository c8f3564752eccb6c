//! A Jepsen-style run against real servers in network namespaces: clients put, compare-and-set
//! and read a few keys through random servers while a nemesis kills, pauses and partitions them;
//! every operation is recorded with when it was sent and answered, for the linearizability
//! checker (`linearizability`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::linearizability::{Input, Op, Output, Value};
use crate::netns::Lan;
use crate::write_gaps::{Acks, Injected, probe};
use crate::{Agent, eventually};

/// How reads are made: what the run checks as if it were linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Consul's default mode and `?consistent`, half each (both must be linearizable).
    DefaultAndConsistent,
    /// `?stale` (not linearizable: the bug the checker must catch).
    Stale,
}

/// One fault the nemesis can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillLeader,
    KillFollower,
    PauseLeader,
    PauseFollower,
    IsolateLeader,
    IsolateFollower,
}

pub const ALL_FAULTS: [Fault; 6] = [
    Fault::KillLeader,
    Fault::KillFollower,
    Fault::PauseLeader,
    Fault::PauseFollower,
    Fault::IsolateLeader,
    Fault::IsolateFollower,
];

pub struct Run {
    pub lan: Lan,
    pub servers: Vec<Agent>,
    pub started: Instant,
    pub history: Arc<Mutex<Vec<Op>>>,
    /// Every fault injected, with when, for the write-gap report.
    pub faults: Vec<Injected>,
    /// Acknowledgements of the write-availability probes.
    pub probe_acks: Acks,
    /// Seeds the nemesis' schedule and each client's choices (`CENSUS_CHAOS_SEED`, else random).
    pub seed: u64,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Keys the clients share.
const KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
/// A client gives up on an answer after this long (then the operation's outcome is unknown).
const OP_TIMEOUT: Duration = Duration::from_secs(3);

impl Run {
    /// Three servers, one per namespace, on Consul's default ports.
    pub async fn start() -> Run {
        let lan = Lan::create(3);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut servers: Vec<Agent> = (0..3)
            .map(|i| {
                let mut flags = vec!["-bootstrap-expect=3".to_string()];
                // Extra agent flags for a run (a faster Raft timing, say).
                flags.extend(
                    std::env::var("CENSUS_CHAOS_AGENT_FLAGS")
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(String::from),
                );
                flags.extend((0..3).filter(|j| *j != i).map(|j| format!("-retry-join={}", lan.ip(j))));
                let name = format!("n{i}");
                Agent::new(&name, dir.path().join(&name), flags).in_netns(&lan.ns(i), &lan.ip(i))
            })
            .collect();
        for s in &mut servers {
            s.start();
        }
        let http = reqwest::Client::builder().timeout(OP_TIMEOUT).build().expect("http client");
        let seed =
            std::env::var("CENSUS_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
        println!("chaos seed {seed} (CENSUS_CHAOS_SEED={seed} replays the schedule)");
        let run = Run {
            lan,
            servers,
            started: Instant::now(),
            history: Arc::default(),
            faults: Vec::new(),
            probe_acks: Acks::default(),
            seed,
            http,
            _dir: dir,
        };
        run.wait_for_leader().await;
        run
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub async fn leader(&self) -> Option<usize> {
        for s in self.servers.iter().filter(|s| s.is_running()) {
            let url = format!("http://{}/v1/status/leader", s.http_addr());
            let Ok(resp) = self.http.get(url).timeout(Duration::from_millis(500)).send().await else {
                continue;
            };
            let text = resp.text().await.unwrap_or_default();
            if let Some(i) = self.servers.iter().position(|s| text.contains(&s.raft_addr())) {
                return Some(i);
            }
        }
        None
    }

    pub async fn wait_for_leader(&self) -> usize {
        eventually(Duration::from_secs(60), "a leader", || self.leader()).await
    }

    /// Runs `clients` clients for `duration`, with `faults` injected one after another (none
    /// when empty), then heals everything and waits for a leader.
    pub async fn workload(&mut self, clients: usize, duration: Duration, reads: Reads, faults: &[Fault]) {
        let deadline = Instant::now() + duration;
        let addrs: Vec<String> = self.servers.iter().map(Agent::http_addr).collect();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let client = ClientRun {
                    id: c,
                    http: self.http.clone(),
                    addrs: addrs.clone(),
                    history: self.history.clone(),
                    started: self.started,
                    reads,
                    seed: self.seed.wrapping_add(1 + c as u64),
                };
                tokio::spawn(client.run(deadline))
            })
            .collect();
        let probes: Vec<_> = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                tokio::spawn(probe(i, addr.clone(), self.started, deadline, self.probe_acks.clone()))
            })
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        while !faults.is_empty() && Instant::now() + Duration::from_secs(8) < deadline {
            let fault = *faults.choose(&mut rng).unwrap_or(&Fault::KillFollower);
            let other_follower = rng.gen_range(0..2);
            self.inject(fault, other_follower).await;
            // Quiet between faults, so the cluster recovers and clients see it recover.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        for t in tasks.into_iter().chain(probes) {
            let _ = t.await;
        }
        self.wait_for_leader().await;
    }

    /// One fault, held for a few seconds, then repaired. A follower fault hits the first or the
    /// second server after the leader, as `other_follower` is 0 or 1.
    pub async fn inject(&mut self, fault: Fault, other_follower: usize) {
        let leader = self.leader().await.unwrap_or(0);
        let follower = (leader + 1 + other_follower % 2) % 3;
        let (target, hold) = match fault {
            Fault::KillLeader | Fault::PauseLeader | Fault::IsolateLeader => (leader, 3),
            _ => (follower, 3),
        };
        println!("{:>7.1}s nemesis: {fault:?} n{target}", self.now() as f64 / 1e9);
        let hold = Duration::from_secs(hold);
        let at = self.now();
        match fault {
            Fault::KillLeader | Fault::KillFollower => {
                self.servers[target].kill();
                tokio::time::sleep(hold).await;
                self.servers[target].start();
            }
            Fault::PauseLeader | Fault::PauseFollower => {
                let Some(pid) = self.servers[target].pid() else { return };
                let pid = Pid::from_raw(i32::try_from(pid).unwrap_or(0));
                let _ = kill(pid, Signal::SIGSTOP);
                tokio::time::sleep(hold).await;
                let _ = kill(pid, Signal::SIGCONT);
            }
            Fault::IsolateLeader | Fault::IsolateFollower => {
                self.lan.isolate(target);
                tokio::time::sleep(hold).await;
                self.lan.heal(target);
            }
        }
        self.faults.push(Injected { fault, target, at, repaired: self.now() });
    }

    /// Operations that were answered (a write or CAS that got an answer, a read that got a value).
    pub fn answered(&self) -> usize {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.iter().filter(|o| o.output != Output::Unknown).count()
    }
}

/// The rest of a response's body, as text (`None` when it does not arrive).
async fn body(resp: &mut reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).ok()
}

struct ClientRun {
    id: usize,
    http: reqwest::Client,
    addrs: Vec<String>,
    history: Arc<Mutex<Vec<Op>>>,
    started: Instant,
    reads: Reads,
    seed: u64,
}

impl ClientRun {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records an operation. One whose request never reached a server (no connection) is not
    /// recorded: it had no effect.
    fn record_answer(
        &self,
        key: &str,
        input: Input,
        answer: &Result<reqwest::Response, reqwest::Error>,
        output: Output,
        call: u64,
        via: String,
    ) {
        if matches!(answer, Err(e) if e.is_connect()) {
            return;
        }
        self.record(key, input, output, call, via);
    }

    fn record(&self, key: &str, input: Input, output: Output, call: u64, via: String) {
        let ret = if output == Output::Unknown { u64::MAX } else { self.now() };
        let op = Op { client: self.id, key: key.to_string(), input, output, call, ret, via };
        self.history.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }

    async fn run(self, deadline: Instant) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let mut n = 0u64;
        while Instant::now() < deadline {
            let key = *KEYS.choose(&mut rng).unwrap_or(&"k0");
            let addr = self.addrs.choose(&mut rng).cloned().unwrap_or_default();
            n += 1;
            let value = format!("c{}-{n}", self.id);
            match rng.gen_range(0..100) {
                0..35 => self.write(&addr, key, value).await,
                35..50 => self.cas(&addr, key, value).await,
                _ => {
                    let mode = match self.reads {
                        Reads::Stale => "stale",
                        Reads::DefaultAndConsistent if rng.gen_bool(0.5) => "consistent",
                        Reads::DefaultAndConsistent => "default",
                    };
                    self.read(&addr, key, mode).await;
                }
            }
        }
    }

    async fn write(&self, addr: &str, key: &str, value: String) {
        let call = self.now();
        let url = format!("http://{addr}/v1/kv/{key}");
        let mut answer = self.http.put(url).body(value.clone()).send().await;
        let output = match &mut answer {
            Ok(r) if r.status().is_success() => match body(r).await.as_deref().map(str::trim) {
                Some("true") => Output::Written,
                _ => Output::Unknown,
            },
            _ => Output::Unknown,
        };
        self.record_answer(key, Input::Write(value), &answer, output, call, format!("{addr} put"));
    }

    /// Reads the key (consistently) and compare-and-sets it from what it read.
    async fn cas(&self, addr: &str, key: &str, value: String) {
        let Some((from, index)) = self.read_with_index(addr, key).await else { return };
        let call = self.now();
        let url = format!("http://{addr}/v1/kv/{key}?cas={index}");
        let mut answer = self.http.put(url).body(value.clone()).send().await;
        let output = match &mut answer {
            Ok(r) if r.status().is_success() => match body(r).await.as_deref().map(str::trim) {
                Some("true") => Output::Cas(true),
                Some("false") => Output::Cas(false),
                _ => Output::Unknown,
            },
            _ => Output::Unknown,
        };
        self.record_answer(
            key,
            Input::Cas { from, to: value },
            &answer,
            output,
            call,
            format!("{addr} cas={index}"),
        );
    }

    /// A consistent read that also returns the modify index (0 when absent); recorded as a read.
    async fn read_with_index(&self, addr: &str, key: &str) -> Option<(Value, u64)> {
        let call = self.now();
        let url = format!("http://{addr}/v1/kv/{key}?consistent");
        let resp = self.http.get(url).send().await.ok()?;
        let (value, index) = match resp.status().as_u16() {
            404 => (None, 0),
            200 => {
                let body: serde_json::Value = resp.json().await.ok()?;
                let entry = body.get(0)?;
                let raw = entry["Value"].as_str().unwrap_or_default();
                let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw).ok()?;
                (Some(String::from_utf8_lossy(&bytes).into_owned()), entry["ModifyIndex"].as_u64()?)
            }
            _ => return None,
        };
        self.record(key, Input::Read, Output::Read(value.clone()), call, format!("{addr} consistent (cas)"));
        Some((value, index))
    }

    async fn read(&self, addr: &str, key: &str, mode: &str) {
        let call = self.now();
        let query = if mode == "default" { "raw".to_string() } else { format!("raw&{mode}") };
        let url = format!("http://{addr}/v1/kv/{key}?{query}");
        let Ok(resp) = self.http.get(url).send().await else { return };
        let value = match resp.status().as_u16() {
            404 => None,
            200 => match resp.text().await {
                Ok(text) => Some(text),
                Err(_) => return,
            },
            _ => return,
        };
        self.record(key, Input::Read, Output::Read(value), call, format!("{addr} {mode}"));
    }
}
