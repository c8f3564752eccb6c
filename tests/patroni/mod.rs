//! Helpers for tests/tests/patroni.rs: three Patroni members with census as their DCS, checks of
//! "exactly one primary, the others replicating", and the split-brain monitor.

pub mod member;
pub mod monitor;
pub mod sql;
pub mod watchdog;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use member::{Member, PgUser, SCOPE};
use serde_json::{Value, json};
use sql::psql;
use watchdog::Leaders;

/// The tables the checks write to: `probe` for the split-brain monitor, `marks` for replication.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS probe (at timestamptz DEFAULT now(), member text); \
                          CREATE TABLE IF NOT EXISTS marks (id text PRIMARY KEY)";

const NO_KEY: &str = "no leader key";

pub struct Patroni {
    pub members: Vec<Member>,
    /// Which members act as leader (their watchdogs).
    pub leaders: Arc<Leaders>,
    pub http: reqwest::Client,
    marks: AtomicU64,
    _dir: tempfile::TempDir,
}

impl Patroni {
    /// Starts one member per census HTTP address: member `i` uses `dcs[i]` as its DCS.
    pub fn start(dcs: &[String], user: PgUser) -> Patroni {
        let dir = tempfile::tempdir().expect("tempdir");
        // Only the PostgreSQL user writes below it (the data dirs must be its own).
        std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid)).expect("chown tempdir");
        let leaders = Leaders::new();
        let mut members: Vec<Member> = dcs
            .iter()
            .enumerate()
            .map(|(i, d)| Member::new(&format!("pg{i}"), dir.path(), d, user, leaders.clone()))
            .collect();
        for member in &mut members {
            member.start();
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("http client");
        Patroni { members, leaders, http, marks: AtomicU64::new(0), _dir: dir }
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.members.len()).collect()
    }

    /// Members whose REST API answers `GET /primary` with 200.
    pub async fn primaries(&self) -> Vec<usize> {
        let asks = self.members.iter().map(|m| m.api_status(&self.http, "primary"));
        let answers = futures::future::join_all(asks).await;
        answers.iter().enumerate().filter(|(_, s)| **s == Some(200)).map(|(i, _)| i).collect()
    }

    /// `Ok(primary)` when exactly one member is primary, it is one of `up`, it takes a write,
    /// and every other member of `up` is a replica that streams from it and has that write.
    pub async fn replicating(&self, up: &[usize]) -> Result<usize, String> {
        let primaries = self.primaries().await;
        let &[p] = primaries.as_slice() else {
            return Err(format!("primaries by REST: {:?}", self.names(&primaries)));
        };
        if !up.contains(&p) {
            return Err(format!("the primary is {}, not one of {:?}", self.members[p].name, self.names(up)));
        }
        let replicas: Vec<usize> = up.iter().copied().filter(|&i| i != p).collect();
        for &r in &replicas {
            let status = self.members[r].api_status(&self.http, "replica").await;
            if status != Some(200) {
                return Err(format!("{}: GET /replica answered {status:?}", self.members[r].name));
            }
        }
        let primary = &self.members[p];
        let id = format!("mark-{}", self.marks.fetch_add(1, Ordering::Relaxed));
        psql(primary.pg_port, &format!("INSERT INTO marks(id) VALUES ('{id}')"))
            .await
            .map_err(|e| format!("write on {}: {e}", primary.name))?;
        let names: Vec<String> = replicas.iter().map(|&r| format!("'{}'", self.members[r].name)).collect();
        let streaming = psql(
            primary.pg_port,
            &format!(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' \
                 AND application_name IN ({})",
                if names.is_empty() { "NULL".into() } else { names.join(", ") }
            ),
        )
        .await
        .map_err(|e| format!("pg_stat_replication on {}: {e}", primary.name))?;
        if streaming != replicas.len().to_string() {
            return Err(format!("{} replicas stream from {}", streaming, primary.name));
        }
        // Streaming on loopback delivers within milliseconds; a replica that is still behind
        // after a second fails this round, and the next round writes again.
        for &r in &replicas {
            let deadline = Instant::now() + Duration::from_secs(1);
            let sql = format!("SELECT count(*) FROM marks WHERE id = '{id}'");
            loop {
                match psql(self.members[r].pg_port, &sql).await {
                    Ok(n) if n == "1" => break,
                    _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
                    other => return Err(format!("{} does not have {id}: {other:?}", self.members[r].name)),
                }
            }
        }
        Ok(p)
    }

    /// Waits for `replicating(up)`; on timeout panics with the last reason and the members' logs.
    pub async fn wait_replicating(&self, up: &[usize], within: Duration, what: &str) -> usize {
        let deadline = Instant::now() + within;
        loop {
            // Two leaders at once is the failure itself; what follows from it can take forever.
            let overlaps = self.leaders.overlaps();
            assert!(
                overlaps.is_empty(),
                "{what}: two leaders at once:\n{}\n{}",
                overlaps.join("\n"),
                self.diagnostics()
            );
            let reason = match self.replicating(up).await {
                Ok(p) => return p,
                Err(reason) => reason,
            };
            assert!(
                Instant::now() < deadline,
                "{what}: no single replicating primary after {within:?}; last: {reason}\n{}",
                self.diagnostics()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `check` returns `Some`; on timeout panics with `what` and the members' logs.
    pub async fn wait_for<T, F, Fut>(&self, within: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "no {what} after {within:?}\n{}", self.diagnostics());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Some member other than `not`.
    pub fn other_than(&self, not: usize) -> usize {
        (not + 1) % self.members.len()
    }

    /// The leader key as census holds it: (value, session), read through `census` (host:port).
    pub async fn leader_key(&self, census: &str) -> Result<(String, Option<String>), String> {
        let url = format!("http://{census}/v1/kv/service/{SCOPE}/leader");
        let entry = self.get_json(&url).await?;
        let entry = entry.get(0).ok_or(NO_KEY)?;
        let value = base64::engine::general_purpose::STANDARD
            .decode(entry["Value"].as_str().unwrap_or_default())
            .map_err(|e| format!("leader value: {e}"))?;
        let session = entry["Session"].as_str().map(str::to_string);
        Ok((String::from_utf8_lossy(&value).into_owned(), session))
    }

    /// The session holding the leader key; None while there is no key (a Patroni session deletes
    /// it when the session ends) or no holder.
    pub async fn leader_session(&self, census: &str) -> Result<Option<String>, String> {
        match self.leader_key(census).await {
            Ok((_, session)) => Ok(session),
            Err(e) if e == NO_KEY => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Asserts through `census` that the leader key names `primary` and is held by that member's
    /// session (`<scope>-<name>`, TTL ttl/2 = 10 s, behavior delete).
    pub async fn assert_leader_key(&self, census: &str, primary: usize) {
        let name = &self.members[primary].name;
        let check = || async {
            let (value, session) = self.leader_key(census).await?;
            let session = session.ok_or(format!("leader key ({value}) held by no session"))?;
            let info = self.get_json(&format!("http://{census}/v1/session/info/{session}")).await?;
            let info = &info[0];
            let expected = json!([format!("{SCOPE}-{name}"), "10s", "delete"]);
            let seen = json!([info["Name"], info["TTL"], info["Behavior"]]);
            if value != *name || seen != expected {
                return Err(format!(
                    "leader key {value:?}, session {session} = {seen}; expected {name:?}, {expected}"
                ));
            }
            Ok(())
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(reason) = check().await {
            assert!(Instant::now() < deadline, "leader key in census: {reason}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Patroni's planned switchover (REST `POST /switchover` on the current primary).
    pub async fn switchover(&self, from: usize, to: usize) {
        let url = format!("http://127.0.0.1:{}/switchover", self.members[from].api_port);
        let body = json!({"leader": self.members[from].name, "candidate": self.members[to].name});
        let answer = self.http.post(url).json(&body).timeout(Duration::from_secs(60)).send().await;
        let answer = answer.expect("POST /switchover");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "switchover {body}: {status} {text}");
    }

    /// The JSON answer of `GET url`; null for 404 (Consul's answer for a missing key).
    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let answer = self.http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Value::Null);
        }
        if !answer.status().is_success() {
            return Err(format!("GET {url}: {}", answer.status()));
        }
        answer.json().await.map_err(|e| format!("GET {url}: {e}"))
    }

    pub fn names(&self, members: &[usize]) -> Vec<String> {
        members.iter().map(|&i| self.members[i].name.clone()).collect()
    }

    /// Every member's ports, whether its PostgreSQL runs, and the end of its log.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            out.push_str(&format!(
                "--- {} pg {} api {} dcs {} postgres running {}\n{}\n",
                m.name,
                m.pg_port,
                m.api_port,
                m.dcs,
                m.postgres_running(),
                m.log_tail(25)
            ));
        }
        out
    }
}
