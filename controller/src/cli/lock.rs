//! `census lock PREFIX COMMAND`: runs COMMAND while holding a lock (or, with `-n`, one of N
//! semaphore slots) under PREFIX, as `consul lock` does.
//!
//! The lock is `PREFIX/.lock`, acquired with a session that this process renews every TTL/2.
//! The child runs with `CONSUL_LOCK_HELD=true` and, for a lock, `CENSUS_LOCK_INDEX` (the key's
//! LockIndex: a fencing token that grows with every acquisition). When the lock is lost (the key
//! changes hands, the session is gone, or no renewal has succeeded for a whole TTL, so the
//! servers may have expired it) the child gets SIGTERM, then SIGKILL 5 s later.

use std::time::{Duration, Instant};

use census_client::session::SessionRequest;
use census_client::{Client, ClientError, QueryOptions};
use clap::Args;
use tokio::process::{Child, Command};

use super::semaphore::Semaphore;
use super::{CliError, HttpArgs};

/// Flags `consul lock` writes on its lock key, so tools can tell a lock from data.
const LOCK_FLAG: u64 = 0x2ddc_cbc0_58a5_0c18;
const SESSION_TTL: Duration = Duration::from_secs(15);
const KILL_GRACE: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// How many holders at once: 1 is a lock, more a semaphore.
    #[arg(short = 'n', long = "n", default_value_t = 1)]
    pub limit: u32,
    /// Name of the session.
    #[arg(long, default_value = "census lock")]
    pub name: String,
    /// Give up if the lock is not acquired within this time (0: wait forever).
    #[arg(long, default_value = "0s", value_parser = census_client::parse_duration)]
    pub timeout: Duration,
    /// Run the command with `sh -c` (the default when it is one argument).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub shell: bool,
    /// Exit with 2 when the child fails (otherwise the child's failure is not propagated).
    #[arg(long)]
    pub child_exit_code: bool,
    /// Let the child read this process's stdin.
    #[arg(long)]
    pub pass_stdin: bool,
    pub prefix: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// What a held lock or semaphore slot says when asked whether it is still held.
pub enum Holding {
    Lock { key: String, session: String, lock_index: u64 },
    Slot(Semaphore),
}

pub async fn run(http: &HttpArgs, args: LockArgs) -> Result<i32, CliError> {
    if args.limit == 0 {
        return Err(CliError::Usage("-n must be at least 1".into()));
    }
    let client = http.client()?;
    let request = SessionRequest {
        name: args.name.clone(),
        ttl: census_client::format_duration(SESSION_TTL),
        behavior: "release".into(),
        ..Default::default()
    };
    let session = client.session_create(&request).await?;
    let outcome = hold_and_run(&client, &session, &args).await;
    if let Err(e) = client.session_destroy(&session).await {
        eprintln!("Error: could not destroy session {session}: {e}");
    }
    outcome
}

async fn hold_and_run(client: &Client, session: &str, args: &LockArgs) -> Result<i32, CliError> {
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    let acquire = async {
        if args.limit == 1 {
            acquire_lock(client, &args.prefix, session).await
        } else {
            Semaphore::acquire(client, &args.prefix, session, args.limit).await.map(Holding::Slot)
        }
    };
    let holding = tokio::select! {
        held = acquire => held?,
        _ = renew_until_lost(client, session) => {
            return Err(CliError::Usage("session lost while waiting for the lock".into()));
        }
        _ = sleep_until(deadline) => {
            eprintln!("Shutdown triggered or timeout during lock acquisition");
            return Ok(1);
        }
    };
    let mut child = spawn_child(args, &holding)?;
    let result = tokio::select! {
        status = child.wait() => Some(status),
        _ = lost(client, session, &holding) => None,
    };
    let code = match result {
        Some(Ok(status)) => {
            release(client, session, &holding).await;
            match (status.success(), args.child_exit_code) {
                (true, _) => 0,
                (false, true) => 2,
                (false, false) => 0,
            }
        }
        Some(Err(e)) => {
            release(client, session, &holding).await;
            return Err(CliError::Usage(format!("waiting for the child failed: {e}")));
        }
        None => {
            eprintln!("Lock lost, killing child");
            terminate(&mut child).await;
            release(client, session, &holding).await;
            1
        }
    };
    Ok(code)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Takes `PREFIX/.lock`, waiting (with blocking queries, not polling) while someone else holds it
/// or it is in lock-delay.
async fn acquire_lock(client: &Client, prefix: &str, session: &str) -> Result<Holding, CliError> {
    let key = format!("{}/.lock", prefix.trim_end_matches('/'));
    let mut index = 0;
    loop {
        let (pair, meta) =
            client.kv_get(&key, &QueryOptions::blocking(index, Duration::from_secs(60))).await?;
        match &pair {
            Some(p) if p.session.is_some() => {
                index = meta.last_index;
                continue;
            }
            Some(p) if p.flags != LOCK_FLAG && p.value.as_deref().is_some_and(|v| !v.is_empty()) => {
                return Err(CliError::Usage(format!("{key} holds data that is not a lock")));
            }
            _ => {}
        }
        if client.kv_acquire(&key, session, b"", Some(LOCK_FLAG)).await? {
            let (pair, _) = client.kv_get(&key, &QueryOptions::default()).await?;
            let lock_index = pair.map(|p| p.lock_index).unwrap_or(0);
            return Ok(Holding::Lock { key, session: session.to_string(), lock_index });
        }
        // Free but refused: lock-delay after the last holder's session was invalidated.
        tokio::time::sleep(RETRY).await;
        index = 0;
    }
}

fn spawn_child(args: &LockArgs, holding: &Holding) -> Result<Child, CliError> {
    let mut cmd = if args.shell && args.command.len() == 1 {
        let mut c = Command::new("sh");
        c.arg("-c").arg(&args.command[0]);
        c
    } else {
        let mut c = Command::new(&args.command[0]);
        c.args(&args.command[1..]);
        c
    };
    cmd.env("CONSUL_LOCK_HELD", "true");
    if let Holding::Lock { lock_index, .. } = holding {
        cmd.env("CENSUS_LOCK_INDEX", lock_index.to_string());
    }
    if !args.pass_stdin {
        cmd.stdin(std::process::Stdio::null());
    }
    cmd.spawn().map_err(|e| CliError::Usage(format!("cannot start {:?}: {e}", args.command[0])))
}

/// Renews the session every TTL/2; returns when it is gone, or when no renewal has succeeded for
/// a whole TTL (the servers may already have expired it).
async fn renew_until_lost(client: &Client, session: &str) {
    let mut last_ok = Instant::now();
    loop {
        match client.session_renew(session).await {
            Ok(Some(_)) => last_ok = Instant::now(),
            Ok(None) => return,
            Err(e) => eprintln!("Warning: session renewal failed: {e}"),
        }
        if last_ok.elapsed() >= SESSION_TTL {
            return;
        }
        let wait = if last_ok.elapsed() < SESSION_TTL / 2 { SESSION_TTL / 2 } else { Duration::from_secs(1) };
        tokio::time::sleep(wait).await;
    }
}

/// Returns when the lock or slot is no longer provably held.
async fn lost(client: &Client, session: &str, holding: &Holding) {
    tokio::select! {
        _ = renew_until_lost(client, session) => {}
        _ = watch_holding(client, holding) => {}
    }
}

async fn watch_holding(client: &Client, holding: &Holding) {
    match holding {
        Holding::Lock { key, session, .. } => {
            let mut index = 0;
            loop {
                match client.kv_get(key, &QueryOptions::blocking(index, Duration::from_secs(60))).await {
                    Ok((pair, meta)) => {
                        if pair.and_then(|p| p.session).as_deref() != Some(session.as_str()) {
                            return;
                        }
                        index = meta.last_index;
                    }
                    // The renewal watchdog decides when an unreachable agent means a lost lock.
                    Err(_) => tokio::time::sleep(RETRY).await,
                }
            }
        }
        Holding::Slot(semaphore) => semaphore.watch(client).await,
    }
}

async fn release(client: &Client, session: &str, holding: &Holding) {
    let result: Result<(), ClientError> = match holding {
        Holding::Lock { key, .. } => client.kv_release(key, session, b"", Some(LOCK_FLAG)).await.map(drop),
        Holding::Slot(semaphore) => semaphore.release(client).await,
    };
    if let Err(e) = result {
        eprintln!("Error: could not release the lock: {e}");
    }
}

/// SIGTERM, then SIGKILL if the child is still running after the grace period.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(KILL_GRACE, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
