//! OSService checks on Linux: the systemd unit's state (`systemctl is-active`).

use std::process::Stdio;
use std::time::Duration;

use crate::catalog::CheckStatus;

pub async fn state(name: &str, timeout: Duration) -> (CheckStatus, String) {
    let run = tokio::process::Command::new("systemctl")
        .args(["is-active", name])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, run).await {
        Err(_) => (CheckStatus::Critical, format!("systemctl is-active {name}: timed out")),
        Ok(Err(e)) => (CheckStatus::Critical, format!("cannot run systemctl: {e}")),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() {
                (CheckStatus::Passing, format!("Service {name:?} is {text}"))
            } else {
                (CheckStatus::Critical, format!("Service {name:?} is {text}"))
            }
        }
    }
}
