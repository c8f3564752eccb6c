//! The shipped haproxy template (consul-template's language) with a real haproxy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use census_client::Client;
use census_e2e::backend::Backend;
use census_e2e::sidecar::Sidecar;
use census_e2e::{eventually, free_port, put, single_server};

/// Registers backend `id` as an instance of `web` with a passing TTL check.
async fn register_web(client: &Client, id: &str, port: u16) {
    let check = serde_json::json!({"CheckID": format!("{id}-ttl"), "TTL": "1h"});
    let body = serde_json::json!({"ID": id, "Name": "web", "Port": port, "Check": check});
    put(client, "/v1/agent/service/register", Some(body)).await;
    put(client, &format!("/v1/agent/check/pass/{id}-ttl"), None).await;
}

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A real haproxy (master-worker, foreground) on a free port; SIGTERM to the master on drop takes
/// its workers down too.
struct Haproxy {
    child: std::process::Child,
    pid_file: PathBuf,
}

impl Haproxy {
    fn start(config: &Path, pid_file: &Path) -> Haproxy {
        let child = std::process::Command::new("haproxy")
            .args(["-W", "-db", "-f"])
            .arg(config)
            .arg("-p")
            .arg(pid_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(pid_file.with_file_name("haproxy.log")).expect("haproxy log"))
            .spawn()
            .expect("haproxy not found: install Debian's haproxy");
        Haproxy { child, pid_file: pid_file.to_path_buf() }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// The shipped haproxy template (consul-template's language): `haproxy -c` accepts every render,
/// a real haproxy serves it and follows the catalog, reloaded on change by the shipped
/// `haproxy-reload.sh` (SIGUSR2 to its master, then waits for the new worker).
#[tokio::test(flavor = "multi_thread")]
async fn haproxy_follows_the_catalog_with_the_shipped_template() {
    let (agent, _agent_dir) = single_server("render-go-haproxy", &[]).await;
    let client = agent.client();
    let (b1, b2) = (Backend::start("b1").await, Backend::start("b2").await);
    register_web(&client, "b1", b1.port).await;
    register_web(&client, "b2", b2.port).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sidecar/templates/haproxy.cfg.ctmpl");
    let (config, pid_file) = (dir.path().join("haproxy.cfg"), dir.path().join("haproxy.pid"));
    let port = free_port();
    let envs = [("HAPROXY_BIND", format!("127.0.0.1:{port}"))];
    let check = "haproxy -c -q -f {}".to_string();
    let once = ["render", "-once", "-consul-addr", &agent.http_addr()]
        .map(String::from)
        .into_iter()
        .chain([
            "-template".into(),
            format!("{}:{}", template.display(), config.display()),
            "-check".into(),
            check.clone(),
        ])
        .collect::<Vec<_>>();
    let (ok, stderr) = Sidecar::run(&once, &envs);
    assert!(ok, "render -once failed: {stderr}");
    let _haproxy = Haproxy::start(&config, &pid_file);
    // The shipped reload script: SIGUSR2 to the master, then waits for the new worker (haproxy
    // loses a SIGUSR2 that arrives during a reload; a bare `kill -USR2` failed this test).
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sidecar/templates/haproxy-reload.sh");
    let reload = format!("{} {}", script.display(), pid_file.display());
    let args = [
        "render".to_string(),
        "-consul-addr".into(),
        agent.http_addr(),
        "-template".into(),
        format!("{}:{}:{reload}", template.display(), config.display()),
        "-check".into(),
        check,
        "-status-addr".into(),
        "off".into(),
    ];
    let sidecar = Sidecar::spawn(&args, &envs, &dir.path().join("sidecar.log"));
    let http = census_e2e::http_client();
    let url = format!("http://127.0.0.1:{port}/web");
    let hits = |n: usize| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let mut seen = BTreeSet::new();
            for _ in 0..n {
                if let Ok(r) = http.get(&url).send().await
                    && r.status().is_success()
                {
                    seen.insert(r.text().await.unwrap_or_default());
                }
            }
            seen
        }
    };
    eventually(Duration::from_secs(10), "haproxy serving b1 and b2", || async {
        (hits(12).await == names(&["b1", "b2"])).then_some(())
    })
    .await;
    put(&client, "/v1/agent/service/deregister/b2", None).await;
    let b3 = Backend::start("b3").await;
    register_web(&client, "b3", b3.port).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = hits(12).await;
        if seen == names(&["b1", "b3"]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b2 out, b3 in after a reload: haproxy answered from {seen:?}\nconfig:\n{}\nsidecar:\n{}\nhaproxy:\n{}",
            std::fs::read_to_string(&config).unwrap_or_default(),
            sidecar.log(),
            std::fs::read_to_string(dir.path().join("haproxy.log")).unwrap_or_default(),
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let rendered = std::fs::read_to_string(&config).expect("config");
    assert!(
        rendered.contains(&format!("127.0.0.1:{} maxconn 256", b3.port)),
        "{rendered}\n{}",
        sidecar.log()
    );
}
