//! deploy/systemd: both units pass `systemd-analyze verify` without a warning and keep their
//! hardening (scripts/systemd-verify.sh, run against the built census binary; fails, saying so,
//! when systemd-analyze is not installed); the units reload on SIGHUP, stop on SIGTERM and only
//! the server unit runs a server; and the example configs next to them start a server and a
//! client agent that joins it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use census_client::QueryOptions;
use census_e2e::{Agent, census_bin, eventually};

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd")
}

/// Every `Key=value` of a unit file, in order, whatever its section (the keys used here are only
/// in one section each).
fn directives(unit: &str) -> BTreeMap<String, Vec<String>> {
    let path = systemd_dir().join(unit);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') || line.starts_with('[') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("{unit}: not a directive: {line}"));
        out.entry(key.trim().to_string()).or_default().push(value.trim().to_string());
    }
    out
}

/// The single value of `key`.
fn one<'a>(unit: &str, d: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match d.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{unit}: expected one {key}=, found {other:?}"),
    }
}

fn example_config(file: &str) -> serde_json::Value {
    let path = systemd_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn systemd_analyze_verifies_both_units_without_a_warning() {
    let installed =
        Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "systemd-analyze is not installed: it is needed to verify deploy/systemd/*.service \
         (Debian: apt-get install systemd; scripts/test.sh installs it)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/systemd-verify.sh");
    let out = Command::new("bash").arg(script).arg(census_bin()).output().expect("run systemd-verify.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/systemd-verify.sh failed:\n{stdout}{stderr}");
    for unit in ["census-server.service", "census-client.service"] {
        assert!(stdout.contains(&format!("{unit}: ok")), "{unit} not reported ok:\n{stdout}{stderr}");
    }
}

#[test]
fn the_units_reload_on_hup_stop_on_term_and_only_the_server_unit_runs_a_server() {
    for (role, unit) in [("server", "census-server.service"), ("client", "census-client.service")] {
        let d = directives(unit);
        assert_eq!(one(unit, &d, "Type"), "exec", "{unit}: census does not implement sd_notify");
        let reload: Vec<&str> = one(unit, &d, "ExecReload").split_whitespace().collect();
        assert_eq!(reload, ["/bin/kill", "-HUP", "$MAINPID"], "{unit}: reload is SIGHUP to the agent");
        assert_eq!(one(unit, &d, "KillSignal"), "SIGTERM", "{unit}");
        assert_eq!(one(unit, &d, "Restart"), "on-failure", "{unit}");
        assert_eq!(one(unit, &d, "User"), "census", "{unit}");
        assert_eq!(one(unit, &d, "LimitNOFILE"), "65536", "{unit}");
        assert_eq!(one(unit, &d, "NoNewPrivileges"), "yes", "{unit}");
        assert_eq!(one(unit, &d, "CapabilityBoundingSet"), "", "{unit}: no port below 1024, no capability");
        assert_eq!(one(unit, &d, "ProtectSystem"), "strict", "{unit}");
        assert_eq!(one(unit, &d, "RestrictAddressFamilies"), "AF_INET AF_INET6 AF_UNIX", "{unit}");
        // The grace period covers the graceful leave SIGTERM starts on a client (at most 15 s).
        let stop = one(unit, &d, "TimeoutStopSec").trim_end_matches('s').parse::<u64>().expect("seconds");
        assert!(stop > 15, "{unit}: TimeoutStopSec={stop}");

        let exec: Vec<&str> = one(unit, &d, "ExecStart").split_whitespace().collect();
        assert_eq!(&exec[..2], &["/usr/local/bin/census", "agent"], "{unit}");
        let is_server_flag = |a: &&str| matches!(*a, "-server" | "--server") || a.starts_with("-server=");
        assert_eq!(exec.iter().any(is_server_flag), role == "server", "{unit}: {exec:?}");

        // The config file the unit needs is the example next to it, and agrees with the unit.
        let config_path = format!("/etc/census/{role}.json");
        assert!(exec.contains(&format!("-config-file={config_path}").as_str()), "{unit}: {exec:?}");
        assert_eq!(one(unit, &d, "ConditionFileNotEmpty"), config_path, "{unit}");
        let config = example_config(&format!("{role}.json"));
        assert_eq!(config["server"], serde_json::json!(role == "server"), "{role}.json");
        let state = one(unit, &d, "StateDirectory");
        assert_eq!(state, "census", "{unit}");
        assert_eq!(
            config["data_dir"],
            format!("/var/lib/{state}"),
            "{role}.json: data_dir is the StateDirectory"
        );
        // A client agent leaves on SIGTERM; a server does not (Consul's defaults, written out).
        assert_eq!(config["leave_on_terminate"], serde_json::json!(role == "client"), "{role}.json");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_configs_start_a_server_and_a_client_agent_that_joins_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |file: &str| format!("-config-file={}", systemd_dir().join(file).display());
    // Flags win over the files: the harness's loopback ports and data dirs, and one server instead
    // of the example's three. The example's own retry_join names are retried in the background.
    let mut server =
        Agent::new("srv", dir.path().join("srv"), vec!["-bootstrap-expect=1".into(), config("server.json")]);
    server.start();
    server.wait_registered().await;
    let mut client =
        Agent::client_agent("cli", dir.path().join("cli"), &server.raft_addr(), vec![config("client.json")]);
    client.start();
    let api = server.client();
    eventually(Duration::from_secs(20), "the client agent's node in the catalog", || async {
        let (nodes, _) = api.catalog_nodes(&QueryOptions::default()).await.ok()?;
        nodes.iter().any(|n| n.node == "cli").then_some(())
    })
    .await;
    let members = api.agent_members().await.expect("members");
    let role = |name: &str| members.iter().find(|m| m.name == name).and_then(|m| m.tags.get("role").cloned());
    assert_eq!(role("srv").as_deref(), Some("consul"), "server.json runs a server: {}", server.log());
    assert_eq!(role("cli").as_deref(), Some("node"), "client.json runs a client agent: {}", client.log());
}
