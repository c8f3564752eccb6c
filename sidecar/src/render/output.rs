//! Validate-then-swap: the candidate is written next to the destination, checked, fsync'd and
//! renamed into place; a failing check leaves the destination as it was. Then nginx is reloaded
//! by a signal to its master (or the template's command runs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("check of the new {dest} failed, keeping the previous file: {output}")]
    CheckFailed { dest: PathBuf, output: String },
    #[error("cannot run {what}: {source}")]
    Spawn { what: String, source: std::io::Error },
    #[error("command {command:?} failed: {output}")]
    CommandFailed { command: String, output: String },
    #[error("command {command:?} did not finish within {timeout:?}; it and its children were killed")]
    CommandTimedOut { command: String, timeout: Duration },
    #[error("pid file {path}: {reason}")]
    PidFile { path: PathBuf, reason: String },
}

/// How a candidate is checked before it replaces the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    None,
    /// A shell command; `{}` is replaced by the candidate's path (also in `$CENSUS_CANDIDATE`).
    Command(String),
    /// `nginx -t` on a minimal main config whose `http` block includes the candidate (the
    /// destination is a conf.d fragment, as in the seeds).
    NginxFragment {
        nginx: String,
    },
    /// `nginx -t -c candidate` (the destination is a whole nginx.conf).
    NginxConfig {
        nginx: String,
    },
}

/// How the consumer learns of a new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// SIGHUP to the pid in this file (nginx's master re-reads its config; no second parse).
    Signal { pid_file: PathBuf },
    /// A shell command (consul-template's `command`), killed after `timeout`
    /// (consul-template's `command_timeout`).
    Command { command: String, timeout: Duration },
    /// A signal (SIGHUP, or `-exec-reload-signal`) to the process `-exec` started.
    Pid { pid: i32, signal: Signal },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The destination already holds exactly this text: nothing written, nothing to reload.
    Unchanged,
    Written,
}

/// What consul-template's `perms` and `backup` ask of a written file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileOptions {
    /// The mode of the new file; by default that of the file it replaces (0644 for a first one,
    /// under the usual umask).
    pub perms: Option<u32>,
    /// Keep the replaced file as `DEST.bak`.
    pub backup: bool,
}

static CANDIDATES: AtomicU64 = AtomicU64::new(0);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
}

/// Installs `content` at `dest` if it differs and passes `validation`.
pub fn install(dest: &Path, content: &str, validation: &Validation) -> Result<Installed, OutputError> {
    install_with(dest, content, validation, FileOptions::default())
}

/// `install` with the file's mode and backup chosen; missing directories on the way to `dest` are
/// created (consul-template's `create_dest_dirs`).
pub fn install_with(
    dest: &Path,
    content: &str,
    validation: &Validation,
    options: FileOptions,
) -> Result<Installed, OutputError> {
    if std::fs::read(dest).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(Installed::Unchanged);
    }
    let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    let n = CANDIDATES.fetch_add(1, Ordering::Relaxed);
    // Hidden and ending in .tmp, so that globs like conf.d/*.conf never pick it up.
    let candidate = dir.join(format!(".{name}.census-{}-{n}.tmp", std::process::id()));
    let result = write_and_swap(dest, dir, &candidate, content, validation, options);
    if result.is_err() {
        let _ = std::fs::remove_file(&candidate);
    }
    result
}

fn write_and_swap(
    dest: &Path,
    dir: &Path,
    candidate: &Path,
    content: &str,
    validation: &Validation,
    options: FileOptions,
) -> Result<Installed, OutputError> {
    let mut file = std::fs::File::create(candidate).map_err(io(candidate))?;
    file.write_all(content.as_bytes()).map_err(io(candidate))?;
    file.sync_all().map_err(io(candidate))?;
    drop(file);
    match options.perms {
        Some(mode) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(candidate, std::fs::Permissions::from_mode(mode))
                .map_err(io(candidate))?;
        }
        None => {
            if let Ok(meta) = std::fs::metadata(dest) {
                let _ = std::fs::set_permissions(candidate, meta.permissions());
            }
        }
    }
    check(dest, candidate, validation)?;
    if options.backup && dest.exists() {
        let mut backup = dest.as_os_str().to_owned();
        backup.push(".bak");
        std::fs::copy(dest, &backup).map_err(io(Path::new(&backup)))?;
    }
    std::fs::rename(candidate, dest).map_err(io(dest))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    Ok(Installed::Written)
}

fn check(dest: &Path, candidate: &Path, validation: &Validation) -> Result<(), OutputError> {
    let failed = |output: String| OutputError::CheckFailed { dest: dest.to_path_buf(), output };
    match validation {
        Validation::None => Ok(()),
        Validation::Command(cmd) => {
            let cmd = cmd.replace("{}", &shell_quote(&candidate.to_string_lossy()));
            let mut command = Command::new("sh");
            command.arg("-c").arg(&cmd).env("CENSUS_CANDIDATE", candidate);
            run(command, &cmd, COMMAND_TIMEOUT).map_err(|e| match e {
                OutputError::CommandFailed { output, .. } => failed(output),
                other => other,
            })
        }
        Validation::NginxConfig { nginx } => nginx_test(nginx, candidate, None).map_err(failed),
        Validation::NginxFragment { nginx } => {
            let scratch = std::env::temp_dir().join(format!(
                "census-nginx-check-{}-{}",
                std::process::id(),
                CANDIDATES.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
            let main = scratch.join("nginx.conf");
            let wrapper = format!(
                "pid {}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n    access_log off;\n    include {};\n}}\n",
                scratch.display(),
                candidate.display()
            );
            let result = std::fs::write(&main, wrapper)
                .map_err(io(&main))
                .and_then(|_| nginx_test(nginx, &main, Some(&scratch)).map_err(failed));
            let _ = std::fs::remove_dir_all(&scratch);
            result
        }
    }
}

/// `nginx -t -q -c CONFIG [-p PREFIX]`; the error text on failure.
fn nginx_test(nginx: &str, config: &Path, prefix: Option<&Path>) -> Result<(), String> {
    let mut command = Command::new(nginx);
    command.arg("-t").arg("-q").arg("-c").arg(config);
    if let Some(prefix) = prefix {
        command.arg("-p").arg(prefix);
    }
    match command.stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run {nginx}: {e}")),
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// How long a check or reload command may run by default (consul-template's `command_timeout`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `command` in its own process group; past `timeout` the whole group is killed (a reload
/// command that hangs must not stop the sidecar from following the catalog).
fn run(mut command: Command, what: &str, timeout: Duration) -> Result<(), OutputError> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| OutputError::Spawn { what: what.to_string(), source })?;
    // Read on a thread: a command that writes much to stderr must not block on a full pipe.
    let (tx, stderr_text) = std::sync::mpsc::channel();
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = tx.send(text);
        });
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => break None,
        }
    };
    let Some(status) = status else {
        let _ = kill(Pid::from_raw(-(child.id() as i32)), Signal::SIGKILL);
        let _ = child.wait();
        return Err(OutputError::CommandTimedOut { command: what.to_string(), timeout });
    };
    if status.success() {
        return Ok(());
    }
    // A daemon the command left behind may hold stderr open: wait for its text only briefly.
    let mut text = stderr_text.recv_timeout(Duration::from_secs(1)).unwrap_or_default().trim().to_string();
    if text.is_empty() {
        text = format!("exit status {status}");
    }
    Err(OutputError::CommandFailed { command: what.to_string(), output: text })
}

/// Tells the consumer to pick up the new file.
pub fn reload(how: &Reload) -> Result<(), OutputError> {
    match how {
        Reload::Signal { pid_file } => {
            let bad = |reason: String| OutputError::PidFile { path: pid_file.clone(), reason };
            let text = std::fs::read_to_string(pid_file).map_err(|e| bad(e.to_string()))?;
            let pid: i32 = text.trim().parse().map_err(|_| bad(format!("{:?} is not a pid", text.trim())))?;
            kill(Pid::from_raw(pid), Signal::SIGHUP).map_err(|e| bad(format!("SIGHUP to {pid}: {e}")))
        }
        Reload::Pid { pid, signal } => kill(Pid::from_raw(*pid), *signal).map_err(|e| OutputError::PidFile {
            path: PathBuf::from("-exec"),
            reason: format!("{signal} to {pid}: {e}"),
        }),
        Reload::Command { command: cmd, timeout } => {
            let mut command = Command::new("sh");
            command.arg("-c").arg(cmd);
            run(command, cmd, *timeout)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_output_is_not_rewritten_and_failed_checks_keep_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out.conf");
        assert_eq!(install(&dest, "one\n", &Validation::None).expect("write"), Installed::Written);
        assert_eq!(install(&dest, "one\n", &Validation::None).expect("same"), Installed::Unchanged);
        let refuse = Validation::Command("grep -q good {}".into());
        let err = install(&dest, "bad\n", &refuse).expect_err("check fails");
        assert!(matches!(err, OutputError::CheckFailed { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "one\n");
        assert_eq!(install(&dest, "good\n", &refuse).expect("passes"), Installed::Written);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "no candidate files left behind");
    }

    #[test]
    fn a_reload_command_that_hangs_is_killed_with_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("child.pid");
        // The shell starts a child that would outlive it, then hangs.
        let command = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
        let reload = Reload::Command { command, timeout: Duration::from_secs(2) };
        let err = super::reload(&reload).expect_err("timed out");
        assert!(matches!(err, OutputError::CommandTimedOut { .. }), "{err}");
        let pid: i32 = std::fs::read_to_string(&pid_file).expect("pid").trim().parse().expect("number");
        // The child got SIGKILL with its group: it is gone or a zombie once the kill lands.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| stat.split_whitespace().nth(2).is_none_or(|state| state != "Z"))
                .unwrap_or(false)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(), "the command's child {pid} was left running");
        let failing = Reload::Command { command: "echo broken >&2; exit 3".into(), timeout: COMMAND_TIMEOUT };
        let err = super::reload(&failing).expect_err("fails");
        assert!(err.to_string().contains("broken"), "{err}");
    }

    #[test]
    fn perms_backup_and_missing_directories() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("a/b/secret.conf");
        let options = FileOptions { perms: Some(0o600), backup: true };
        assert_eq!(
            install_with(&dest, "one\n", &Validation::None, options).expect("write"),
            Installed::Written
        );
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dest), 0o600);
        install_with(&dest, "two\n", &Validation::None, options).expect("rewrite");
        let backup = dir.path().join("a/b/secret.conf.bak");
        assert_eq!(std::fs::read_to_string(&backup).expect("backup"), "one\n");
        assert_eq!(std::fs::read_to_string(&dest).expect("new"), "two\n");
    }

    #[test]
    fn reload_by_pid_file_reports_a_bad_pid_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("nginx.pid");
        std::fs::write(&pid_file, "not a pid").expect("write");
        let err = reload(&Reload::Signal { pid_file }).expect_err("bad pid");
        assert!(err.to_string().contains("not a pid"), "{err}");
    }
}
