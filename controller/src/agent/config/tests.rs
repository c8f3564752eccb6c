//! How flags, config sources and defaults combine.

use super::*;

/// One config file, read strictly.
fn file(json: &str) -> FileConfig {
    FileConfig::parse(json, ConfigSource::File("test.json".into())).expect("valid config")
}

#[test]
fn default_ports_are_added_only_when_missing() {
    assert_eq!(with_default_port("10.0.0.1", 8300), "10.0.0.1:8300");
    assert_eq!(with_default_port("10.0.0.1:9000", 8300), "10.0.0.1:9000");
    assert_eq!(with_default_port("[::1]:9000", 8300), "[::1]:9000");
}

#[test]
fn dev_needs_no_data_dir_and_bootstraps_alone() {
    let args = AgentArgs { dev: true, ..Default::default() };
    let cfg = AgentConfig::resolve(&args, &[]).expect("dev config");
    assert!(cfg.bootstrap && cfg.data_dir.is_none());
    assert_eq!((cfg.bind.as_str(), cfg.client.as_str()), ("127.0.0.1", "127.0.0.1"));
}

#[test]
fn server_needs_a_data_dir() {
    let err =
        AgentConfig::resolve(&AgentArgs { server: true, ..Default::default() }, &[]).expect_err("no dir");
    assert!(err.to_string().contains("-data-dir"));
}

#[test]
fn seed_service_definition_is_read_from_a_file() {
    let defs = file(r#"{"service": {"name": "web", "tags": ["rails"], "port": 80}}"#);
    let args = AgentArgs { dev: true, ..Default::default() };
    let cfg = AgentConfig::resolve(&args, &[defs]).expect("resolve");
    assert_eq!(cfg.services.len(), 1);
    assert_eq!((cfg.services[0].name.as_str(), cfg.services[0].port), ("web", 80));
}

#[test]
fn dns_settings_come_from_dns_config_and_flags() {
    let defs = file(
        r#"{"domain": "cluster.local", "recursors": ["9.9.9.9"], "ports": {"dns": 8653},
            "dns_config": {"only_passing": true, "service_ttl": {"*": "5s"}, "a_record_limit": 3}}"#,
    );
    let args = AgentArgs { dev: true, alt_domain: Some("census".into()), ..Default::default() };
    let cfg = AgentConfig::resolve(&args, &[defs]).expect("resolve");
    assert_eq!(cfg.dns_port, Some(8653));
    assert_eq!(cfg.dns.domains, Domains::new("cluster.local.", Some("census.")));
    assert!(cfg.dns.only_passing);
    assert_eq!((cfg.dns.service_ttl_for("web"), cfg.dns.a_record_limit), (5, Some(3)));
    assert_eq!(cfg.dns.recursors, ["9.9.9.9:53".parse().expect("addr")]);
    let off = AgentArgs { dev: true, dns_port: Some(-1), ..Default::default() };
    assert_eq!(AgentConfig::resolve(&off, &[]).expect("resolve").dns_port, None);
    let bad = file(r#"{"dns_config": {"node_ttl": "soon"}}"#);
    assert!(AgentConfig::resolve(&AgentArgs { dev: true, ..Default::default() }, &[bad]).is_err());
}

#[test]
fn the_ui_is_on_with_dev_or_ui_and_off_otherwise() {
    let resolve =
        |args: AgentArgs, files: &[FileConfig]| AgentConfig::resolve(&args, files).expect("resolve").ui;
    let dir = || Some(PathBuf::from("/data"));
    assert_eq!(resolve(AgentArgs { dev: true, ..Default::default() }, &[]), Some(None));
    assert_eq!(resolve(AgentArgs { data_dir: dir(), ..Default::default() }, &[]), None);
    assert_eq!(resolve(AgentArgs { data_dir: dir(), ui: true, ..Default::default() }, &[]), Some(None));
    let ui_dir = AgentArgs { data_dir: dir(), ui_dir: Some("/srv/ui".into()), ..Default::default() };
    assert_eq!(resolve(ui_dir, &[]), Some(Some(PathBuf::from("/srv/ui"))));
    let on = file(r#"{"ui_config": {"enabled": true}}"#);
    assert_eq!(resolve(AgentArgs { data_dir: dir(), ..Default::default() }, &[on]), Some(None));
    let off = file(r#"{"ui": false}"#);
    assert_eq!(resolve(AgentArgs { dev: true, ..Default::default() }, &[off]), None);
}

fn data_dir() -> AgentArgs {
    AgentArgs { data_dir: Some("/data".into()), ..Default::default() }
}

#[test]
fn servers_skip_leave_on_interrupt_and_other_agents_leave_on_terminate_as_in_consul() {
    let resolve = |args: AgentArgs, files: &[FileConfig]| {
        let cfg = AgentConfig::resolve(&args, files).expect("resolve");
        (cfg.skip_leave_on_interrupt, cfg.leave_on_terminate)
    };
    assert_eq!(resolve(AgentArgs { server: true, ..data_dir() }, &[]), (true, false));
    assert_eq!(resolve(AgentArgs { dev: true, ..Default::default() }, &[]), (true, false));
    assert_eq!(resolve(data_dir(), &[]), (false, true));
    assert_eq!(resolve(data_dir(), &[file(r#"{"server": true}"#)]), (true, false));
    let settings = file(r#"{"skip_leave_on_interrupt": false, "leave_on_terminate": true}"#);
    assert_eq!(resolve(AgentArgs { server: true, ..data_dir() }, &[settings]), (false, true));
}

#[test]
fn the_raft_multiplier_comes_from_the_flag_or_performance_and_stays_within_consul_limits() {
    let resolve = |args: AgentArgs, files: &[FileConfig]| AgentConfig::resolve(&args, files);
    assert_eq!(resolve(data_dir(), &[]).expect("default").raft_multiplier, 1);
    let five = file(r#"{"performance": {"raft_multiplier": 5}}"#);
    assert_eq!(resolve(data_dir(), std::slice::from_ref(&five)).expect("file").raft_multiplier, 5);
    let flag = AgentArgs { raft_multiplier: Some(2), ..data_dir() };
    assert_eq!(resolve(flag, &[five]).expect("flag wins").raft_multiplier, 2);
    let err = resolve(data_dir(), &[file(r#"{"performance": {"raft_multiplier": 11}}"#)]).expect_err("11");
    assert!(err.to_string().contains("between 1 and 10"), "{err}");
}

#[test]
fn the_raft_election_timeout_is_kept_within_30ms_and_10s() {
    let with = |ms: u64| AgentArgs {
        raft_election_timeout: Some(std::time::Duration::from_millis(ms)),
        ..data_dir()
    };
    let cfg = AgentConfig::resolve(&with(150), &[]).expect("150ms");
    assert_eq!(cfg.raft_election_timeout, Some(std::time::Duration::from_millis(150)));
    for ms in [10, 20_000] {
        let err = AgentConfig::resolve(&with(ms), &[]).expect_err("out of range");
        assert!(err.to_string().contains("between 30ms and 10s"), "{err}");
    }
}

#[test]
fn the_environment_data_dir_is_the_last_resort() {
    let env = |var: &str| (var == DATA_DIR_VAR).then(|| "/census/data".to_string());
    let server = AgentArgs { server: true, ..Default::default() };
    let files = read_sources(&server, env).expect("read");
    let cfg = AgentConfig::resolve(&server, &files).expect("the image's data dir");
    assert_eq!(cfg.data_dir, Some(PathBuf::from("/census/data")));
    let flag = AgentArgs { data_dir: Some("/flag".into()), ..server };
    assert_eq!(AgentConfig::resolve(&flag, &files).expect("flag").data_dir, Some(PathBuf::from("/flag")));
}

#[test]
fn log_file_pid_file_and_ui_content_path_are_read_from_flags_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("consul.log");
    let args = AgentArgs { log_file: Some(log.clone()), ui_content_path: Some("ui/".into()), ..data_dir() };
    let cfg = AgentConfig::resolve(&args, &[]).expect("resolve");
    assert_eq!((cfg.log_file, cfg.ui_content_path.as_str()), (Some(log), "/ui/"));
    let json = format!(r#"{{"log_file": "{}/", "pid_file": "/run/census.pid"}}"#, dir.path().display());
    let cfg = AgentConfig::resolve(&data_dir(), &[file(&json)]).expect("resolve");
    assert_eq!(cfg.log_file, Some(dir.path().join(paths::DEFAULT_LOG_NAME)));
    assert_eq!(cfg.pid_file, Some(PathBuf::from("/run/census.pid")));
    let elsewhere = AgentArgs { ui_content_path: Some("/consul/".into()), ..data_dir() };
    assert!(AgentConfig::resolve(&elsewhere, &[]).is_err(), "a UI path census does not serve is refused");
}

#[test]
fn warnings_of_every_source_are_kept_once() {
    let a = file(r#"{"disable_update_check": true}"#);
    let cfg = AgentConfig::resolve(&data_dir(), &[a.clone(), a]).expect("resolve");
    assert_eq!(
        cfg.warnings,
        ["config key disable_update_check in test.json: accepted, has no effect in census"]
    );
}

#[test]
fn tls_settings_layer_the_old_keys_the_defaults_and_each_listener() {
    let files = vec![
        FileConfig::parse(
            r#"{"ca_file": "/old/ca.pem", "verify_incoming": true, "cert_file": "/c.pem", "key_file": "/k.pem",
                "tls": {"defaults": {"ca_file": "/new/ca.pem", "verify_outgoing": true},
                        "internal_rpc": {"verify_server_hostname": true},
                        "https": {"verify_incoming": false}},
                "ports": {"https": 8501}}"#,
            ConfigSource::Env("CONSUL_LOCAL_CONFIG"),
        )
        .expect("parse"),
    ];
    let dev = AgentArgs { dev: true, ..Default::default() };
    let config = AgentConfig::resolve(&dev, &files).expect("resolve");
    let tls = &config.tls;
    assert_eq!(tls.internal_rpc.ca_file.as_deref(), Some(std::path::Path::new("/new/ca.pem")));
    assert!(tls.internal_rpc.verify_incoming && tls.internal_rpc.verify_outgoing);
    assert!(tls.internal_rpc.verify_server_hostname);
    assert!(!tls.https.verify_incoming && !tls.https.verify_server_hostname);
    assert_eq!(tls.https_port, Some(8501));
    assert_eq!(tls.server_name, "server.dc1.consul");
    let half = FileConfig::parse(r#"{"tls": {"defaults": {"cert_file": "/c.pem"}}}"#, ConfigSource::Env("X"))
        .expect("parse");
    let err = AgentConfig::resolve(&dev, &[half]).expect_err("a certificate without its key");
    assert!(err.to_string().contains("cert_file and key_file go together"), "{err}");
}
