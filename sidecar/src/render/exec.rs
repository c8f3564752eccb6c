//! `-exec`: consul-template's supervisor mode. The command (nginx in the foreground) starts after
//! the first complete render, is reloaded with SIGHUP when its files change, receives the
//! SIGTERM/SIGINT the sidecar gets, and its exit ends the sidecar. This lets one container run
//! `census-sidecar render -exec nginx` without a shell or an init system.

use std::process::ExitStatus;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("-exec {0:?}: unbalanced quote")]
    Quote(String),
    #[error("-exec: empty command")]
    Empty,
    #[error("-exec {cmd}: cannot start: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("-exec {cmd}: {status}")]
    Exited { cmd: String, status: ExitStatus },
}

/// Splits a command line on whitespace, honouring single and double quotes (no shell needed).
pub fn split_command(line: &str) -> Result<Vec<String>, ExecError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(ExecError::Quote(line.to_string()));
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(ExecError::Empty);
    }
    Ok(words)
}

/// The running command.
pub struct Supervised {
    cmd: String,
    child: Child,
}

impl Supervised {
    pub fn spawn(argv: &[String]) -> Result<Supervised, ExecError> {
        let cmd = argv.join(" ");
        let (program, args) = argv.split_first().ok_or(ExecError::Empty)?;
        let child = Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ExecError::Spawn { cmd: cmd.clone(), source })?;
        tracing::info!(cmd = %cmd, pid = child.id(), "started");
        Ok(Supervised { cmd, child })
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.id().map(|p| p as i32)
    }

    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid()
            && let Err(e) = kill(Pid::from_raw(pid), signal)
        {
            tracing::warn!(cmd = %self.cmd, error = %e, "cannot signal {signal}");
        }
    }

    /// Waits for the command to end: `Ok` when it exited with 0.
    pub async fn wait(&mut self) -> Result<(), ExecError> {
        match self.child.wait().await {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(ExecError::Exited { cmd: self.cmd.clone(), status }),
            Err(source) => Err(ExecError::Spawn { cmd: self.cmd.clone(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_honours_quotes() {
        assert_eq!(
            split_command("nginx -g 'daemon off;'").expect("split"),
            vec!["nginx", "-g", "daemon off;"]
        );
        assert_eq!(split_command(r#"a "b c" d"#).expect("split"), vec!["a", "b c", "d"]);
        assert_eq!(split_command("x ''").expect("split"), vec!["x", ""]);
        assert!(matches!(split_command("a 'b"), Err(ExecError::Quote(_))));
        assert!(matches!(split_command("  "), Err(ExecError::Empty)));
    }

    #[tokio::test]
    async fn exit_status_is_reported() {
        let mut ok = Supervised::spawn(&["true".to_string()]).expect("spawn");
        assert!(ok.wait().await.is_ok());
        let mut bad = Supervised::spawn(&["false".to_string()]).expect("spawn");
        assert!(matches!(bad.wait().await, Err(ExecError::Exited { .. })));
    }
}
