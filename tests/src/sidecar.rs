//! A `census-sidecar` process with its log in a file; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Sidecar {
    log: PathBuf,
    child: Option<Child>,
}

impl Sidecar {
    /// Starts `census-sidecar ARGS…` with `envs`, logging to `log`.
    pub fn spawn(args: &[String], envs: &[(&str, String)], log: &Path) -> Sidecar {
        let file = std::fs::File::create(log).expect("sidecar log");
        let child = Command::new(crate::sidecar_bin())
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn census-sidecar");
        Sidecar { log: log.to_path_buf(), child: Some(child) }
    }

    /// Runs `census-sidecar ARGS…` to completion: (success, stderr). A run that has not ended
    /// after 60 s (a `-once` waiting for data that never comes) is killed and fails the test.
    pub fn run(args: &[String], envs: &[(&str, String)]) -> (bool, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sidecar = Sidecar::spawn(args, envs, &dir.path().join("stderr"));
        let Some(success) = sidecar.wait_exit(std::time::Duration::from_secs(60)) else {
            panic!("census-sidecar {args:?} did not finish in 60 s:\n{}", sidecar.log());
        };
        (success, sidecar.log())
    }

    /// SIGTERM, then waits up to `timeout` for the exit; `Some(success)` if it exited.
    pub fn terminate(&mut self, timeout: std::time::Duration) -> Option<bool> {
        let child = self.child.as_mut()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).ok()?;
        self.wait_exit(timeout)
    }

    /// Waits up to `timeout` for the sidecar to exit by itself; `Some(success)` if it did.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<bool> {
        let child = self.child.as_mut()?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status.success());
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// SIGKILL: the sidecar gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
