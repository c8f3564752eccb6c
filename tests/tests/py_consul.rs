//! py-consul (a third-party Consul client from PyPI) against a three-server census cluster.

use std::process::Command;

use census_e2e::{Cluster, python};

#[tokio::test(flavor = "multi_thread")]
async fn py_consul_drives_registration_catalog_health_and_kv() {
    let has_client = Command::new(python()).args(["-c", "import consul"]).status().map(|s| s.success());
    assert!(matches!(has_client, Ok(true)), "py-consul is not installed: the test command installs it");
    let cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader(std::time::Duration::from_secs(10)).await;
    let follower = cluster.other_than(leader);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/py_consul_test.py");
    let out = Command::new(python())
        .arg(script)
        .arg(cluster.agents[follower].http_addr())
        .arg(cluster.agents[leader].http_addr())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "py-consul run failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
