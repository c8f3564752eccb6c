//! psql against one member's PostgreSQL, as the superuser over TCP on loopback (the members'
//! pg_hba trusts 127.0.0.1: these clusters live for one test and hold nothing secret).

use std::process::Stdio;
use std::time::Duration;

/// Debian's PostgreSQL 15 (`/usr/local/bin/postgres` on some machines is only a link to it).
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Runs `sql` (one or more statements, one transaction) on 127.0.0.1:`port`: the unaligned,
/// tuples-only output, or psql's error text. A server that does not answer costs at most a few
/// seconds: connection and statement timeouts, and a hard limit on the whole call.
pub async fn psql(port: u16, sql: &str) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(format!("{PG_BIN}/psql"));
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-d", "postgres", "-p", &port.to_string(), "-c", sql])
        // libpq's minimum; a killed postmaster refuses at once anyway.
        .env("PGCONNECT_TIMEOUT", "2")
        .env("PGOPTIONS", "-c statement_timeout=3000")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(6), cmd.output()).await {
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        Ok(Ok(out)) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Ok(Err(e)) => Err(format!("run psql: {e}")),
        Err(_) => Err("psql did not return within 6 s".into()),
    }
}

/// Whether the server on `port` is a primary that takes writes right now: it answers
/// `pg_is_in_recovery()` = false and commits an insert (a standby refuses the insert).
pub async fn takes_writes(port: u16, member: &str) -> bool {
    let sql = format!("INSERT INTO probe(member) VALUES ('{member}'); SELECT pg_is_in_recovery()");
    psql(port, &sql).await.is_ok_and(|out| out == "f")
}
