//! A real nginx (Debian's) run in the foreground under a scratch prefix, including `conf.d/*.conf`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One nginx master with its own prefix directory; stopped (with its workers) on drop.
pub struct Nginx {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Writes the main config (http block includes `conf.d/*.conf`); the caller renders conf.d.
    pub fn prepare(dir: &Path, port: u16) -> Nginx {
        std::fs::create_dir_all(dir.join("conf.d")).expect("conf.d");
        std::fs::create_dir_all(dir.join("logs")).expect("logs");
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  keepalive_timeout 65;\n  include {d}/conf.d/*.conf;\n}}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("nginx.conf");
        Nginx { dir: dir.to_path_buf(), port, child: None }
    }

    pub fn conf_d(&self) -> PathBuf {
        self.dir.join("conf.d")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("nginx.pid")
    }

    pub fn start(&mut self) {
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx not found: install nginx (scripts/test.sh does)");
        self.child = Some(child);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }
}

/// SIGTERM first: the master stops its workers and exits (a SIGKILLed master orphans its workers,
/// which keep its ports); SIGKILL only if it has not exited after a few seconds.
impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
