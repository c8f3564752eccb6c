//! The census image on the real Docker engine, for the seeds' `docker run` lines: built locally
//! by docker/build.sh (nothing is pulled), removed with its containers at the end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use census_e2e::eventually;

use crate::process::Api;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `docker ARGS`; its stdout, or a panic with its output.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a Docker engine answers.
pub fn engine_answers() -> bool {
    Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success())
}

/// The `census:TAG` image, with the containers started from it; all removed on drop.
pub struct Image {
    pub name: String,
    containers: Vec<String>,
}

impl Image {
    /// Builds `census:TAG` with docker/build.sh (a release build of the agent).
    pub fn build(tag: &str) -> Image {
        let out = Command::new("bash")
            .arg(repo().join("docker/build.sh"))
            .arg("census")
            .env("TAG", tag)
            .output()
            .expect("run docker/build.sh");
        assert!(
            out.status.success(),
            "docker/build.sh census failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Image { name: format!("census:{tag}"), containers: Vec::new() }
    }

    /// `docker run ARGS` (ARGS name the image); the container is removed on drop.
    pub fn run(&mut self, name: &str, args: &[String]) {
        self.containers.push(name.to_string());
        let mut argv = vec!["run".to_string(), "--name".to_string(), name.to_string()];
        argv.extend(args.iter().cloned());
        docker(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Waits until the container has stopped.
    pub fn wait_stopped(container: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while docker(&["inspect", "-f", "{{.State.Running}}", container]).trim() == "true" {
            assert!(Instant::now() < deadline, "{container} still running after {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the agent in `container` is ready, failing at once if the container stops.
    pub async fn wait_ready(container: &str, api: &Api) {
        eventually(Duration::from_secs(30), "the agent in the container to be ready", || async {
            let running = docker(&["inspect", "-f", "{{.State.Running}}", container]);
            assert_eq!(running.trim(), "true", "{container} stopped:\n{}", Image::logs(container));
            api.ready().await.then_some(())
        })
        .await;
    }

    pub fn logs(container: &str) -> String {
        let out = Command::new("docker").args(["logs", container]).output().expect("docker logs");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        for container in &self.containers {
            if std::thread::panicking() {
                eprintln!("--- docker logs {container}:\n{}", Image::logs(container));
            }
            let _ = Command::new("docker").args(["rm", "-f", "-v", container]).output();
        }
        let _ = Command::new("docker").args(["rmi", "-f", &self.name]).output();
    }
}

/// The address this host reaches others from (what `$HOST_IP` stands for in the seeds).
pub fn host_ip() -> String {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    let ip = socket.connect("192.0.2.1:9").ok().and_then(|_| socket.local_addr().ok()).map(|a| a.ip());
    ip.filter(|ip| !ip.is_unspecified()).map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
}
