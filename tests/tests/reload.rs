//! `-config-dir` reload: SIGHUP and `census reload` apply added, changed and removed service
//! definitions without a restart; a broken file changes nothing and leaves the agent running.

use std::path::Path;
use std::time::Duration;

use census_client::{Client, QueryOptions};
use census_e2e::{census_bin, eventually, single_server};

fn write(dir: &Path, file: &str, json: &str) {
    std::fs::write(dir.join(file), json).expect("write definition");
}

async fn port_of(client: &Client, service: &str) -> Option<u16> {
    let (entries, _) = client.catalog_service(service, &QueryOptions::default()).await.ok()?;
    entries.first().map(|e| e.service_port)
}

fn census_reload(addr: &str) -> std::process::Output {
    std::process::Command::new(census_bin())
        .args(["reload", "-http-addr", addr])
        .output()
        .expect("census reload")
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_and_census_reload_apply_additions_changes_and_removals() {
    let defs = tempfile::tempdir().expect("tempdir");
    let dir = defs.path();
    write(dir, "web.json", r#"{"service": {"name": "web", "tags": ["rails"], "port": 80}}"#);
    let flag = format!("-config-dir={}", dir.display());
    let (mut agent, _data) = single_server("n1", &[&flag]).await;
    let client = agent.client();
    eventually(Duration::from_secs(10), "web from the config dir", || async {
        port_of(&client, "web").await
    })
    .await;

    // Added and changed, applied on SIGHUP.
    write(dir, "api.json", r#"{"service": {"name": "api", "port": 9000}}"#);
    write(dir, "web.json", r#"{"service": {"name": "web", "tags": ["rails"], "port": 8080}}"#);
    let pid = agent.pid().expect("running") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP)
        .expect("SIGHUP");
    eventually(Duration::from_secs(10), "api added and web changed", || async {
        (port_of(&client, "api").await == Some(9000) && port_of(&client, "web").await == Some(8080))
            .then_some(())
    })
    .await;
    assert!(agent.is_running() && !agent.wait_exit(Duration::ZERO), "SIGHUP must not stop the agent");

    // Removed, applied by `census reload` before it returns.
    std::fs::remove_file(dir.join("api.json")).expect("remove");
    let out = census_reload(&agent.http_addr());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(port_of(&client, "api").await, None, "api's definition was removed");
    assert_eq!(port_of(&client, "web").await, Some(8080));

    // A broken file: reload fails, says why, and changes nothing.
    write(dir, "web.json", r#"{"service": {"name": "web", "port": 81"#);
    write(dir, "db.json", r#"{"service": {"name": "db", "port": 5432}}"#);
    let out = census_reload(&agent.http_addr());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("web.json"), "the error names the broken file: {err}");
    assert_eq!(port_of(&client, "web").await, Some(8080));
    assert_eq!(port_of(&client, "db").await, None);
    assert!(agent.is_running() && !agent.wait_exit(Duration::ZERO));
}
