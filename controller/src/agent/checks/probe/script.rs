//! Script checks (`Args`): run with a timeout; exit 0 passing, 1 warning, anything else critical;
//! standard output and error together are the check's output.

use std::process::Stdio;
use std::time::Duration;

use crate::catalog::CheckStatus;

pub async fn run(args: &[String], timeout: Duration) -> (CheckStatus, String) {
    let Some((program, rest)) = args.split_first() else {
        return (CheckStatus::Critical, "no command to run".into());
    };
    let child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => return (CheckStatus::Critical, format!("cannot run {program}: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => (CheckStatus::Critical, format!("Timed out ({timeout:?}) running check")),
        Ok(Err(e)) => (CheckStatus::Critical, format!("running {program}: {e}")),
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let status = match out.status.code() {
                Some(0) => CheckStatus::Passing,
                Some(1) => CheckStatus::Warning,
                _ => CheckStatus::Critical,
            };
            (status, text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn exit_codes_map_to_statuses_and_output_is_kept() {
        let second = Duration::from_secs(5);
        assert_eq!(run(&sh("echo ok"), second).await, (CheckStatus::Passing, "ok\n".into()));
        assert_eq!(run(&sh("echo slow >&2; exit 1"), second).await, (CheckStatus::Warning, "slow\n".into()));
        assert_eq!(run(&sh("exit 2"), second).await.0, CheckStatus::Critical);
        let (status, output) = run(&sh("sleep 5"), Duration::from_millis(100)).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.contains("Timed out"), "{output}");
        assert_eq!(run(&["/nonexistent/check".into()], second).await.0, CheckStatus::Critical);
    }
}
