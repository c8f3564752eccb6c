//! Agent config sources: JSON files (`-config-file`, the `.json` files of `-config-dir`), and the
//! environment: `CONSUL_LOCAL_CONFIG` and `CENSUS_LOCAL_CONFIG` (one JSON document each, as
//! Consul's Docker image takes it) and `CENSUS_DATA_DIR` (a default `data_dir`, for the image).
//! Every source is strict: a key Consul does not know, or a security setting census cannot
//! honour, is an error naming the key and the source.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::ConfigError;
use super::args::AgentArgs;
use super::keys;
use super::table::TOP_LEVEL;
use crate::dns::DnsConfigFile;

/// Environment variables holding a JSON config document, read in this order (later wins).
pub const LOCAL_CONFIG_VARS: [&str; 2] = ["CONSUL_LOCAL_CONFIG", "CENSUS_LOCAL_CONFIG"];
/// Environment variable naming the data dir used when neither a flag nor a file names one.
pub const DATA_DIR_VAR: &str = "CENSUS_DATA_DIR";

/// Where a piece of configuration came from, as error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Env(&'static str),
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Env(var) => write!(f, "${var}"),
        }
    }
}

/// `ui_config` of an agent config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UiConfigFile {
    pub enabled: Option<bool>,
    pub dir: Option<PathBuf>,
    pub content_path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Ports {
    pub http: Option<u16>,
    pub https: Option<u16>,
    pub dns: Option<i32>,
    pub server: Option<u16>,
    pub serf_lan: Option<u16>,
}

/// `tls.defaults`, `tls.internal_rpc`, `tls.https`: one listener's files and checks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TlsBlock {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub verify_incoming: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,
}

/// The `tls` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TlsFile {
    pub defaults: TlsBlock,
    pub internal_rpc: TlsBlock,
    pub https: TlsBlock,
}

/// The `acl` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AclFile {
    pub enabled: Option<bool>,
    pub default_policy: Option<String>,
    pub enable_key_list_policy: Option<bool>,
    pub enable_token_persistence: Option<bool>,
    pub tokens: AclTokensFile,
}

/// `acl.tokens` (with Consul's older names: `master`, `agent_master`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AclTokensFile {
    pub initial_management: Option<String>,
    pub master: Option<String>,
    pub default: Option<String>,
    pub agent: Option<String>,
    pub agent_recovery: Option<String>,
    pub agent_master: Option<String>,
    pub replication: Option<String>,
    pub config_file_service_registration: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Performance {
    pub raft_multiplier: Option<u64>,
}

/// The keys census reads from one config source. Which keys exist at all is `keys::TOP_LEVEL`;
/// the ones census does not act on are checked there and left out here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub datacenter: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub node_name: Option<String>,
    pub server: Option<bool>,
    pub bootstrap: Option<bool>,
    pub bootstrap_expect: Option<usize>,
    pub retry_join: Vec<String>,
    pub start_join: Vec<String>,
    pub bind_addr: Option<String>,
    pub advertise_addr: Option<String>,
    pub client_addr: Option<String>,
    pub ports: Ports,
    pub acl: Option<AclFile>,
    pub tls: Option<TlsFile>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub verify_incoming: Option<bool>,
    pub verify_incoming_rpc: Option<bool>,
    pub verify_incoming_https: Option<bool>,
    pub verify_outgoing: Option<bool>,
    pub verify_server_hostname: Option<bool>,
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: Option<bool>,
    pub encrypt_verify_outgoing: Option<bool>,
    pub log_level: Option<String>,
    pub log_file: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub leave_on_terminate: Option<bool>,
    pub skip_leave_on_interrupt: Option<bool>,
    pub reconnect_timeout: Option<String>,
    pub performance: Performance,
    pub enable_script_checks: Option<bool>,
    pub enable_local_script_checks: Option<bool>,
    pub domain: Option<String>,
    pub alt_domain: Option<String>,
    pub recursors: Vec<String>,
    pub dns_config: Option<DnsConfigFile>,
    pub ui: Option<bool>,
    pub ui_dir: Option<PathBuf>,
    pub ui_content_path: Option<String>,
    pub ui_config: UiConfigFile,
    /// Service definitions, decoded later as the HTTP API decodes a registration.
    pub service: Option<Value>,
    pub services: Vec<Value>,
    /// Where this came from.
    #[serde(skip)]
    pub origin: Option<ConfigSource>,
    /// Things to tell the operator once the log is set up (keys with no effect, skipped files).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl FileConfig {
    /// Parses one JSON config document strictly: unknown keys and refused settings are errors
    /// naming every offending key; keys with no effect in census become warnings.
    pub fn parse(text: &str, origin: ConfigSource) -> Result<FileConfig, ConfigError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|source| ConfigError::Parse { origin: origin.clone(), source })?;
        let Value::Object(object) = value else {
            return Err(ConfigError::NotAnObject { origin });
        };
        let findings = keys::check(&object, TOP_LEVEL);
        if !findings.unknown.is_empty() {
            return Err(ConfigError::UnknownKeys { origin, keys: findings.unknown });
        }
        if !findings.refused.is_empty() {
            return Err(ConfigError::Refused { origin, settings: findings.refused });
        }
        // Each key on its own first, so that a value of the wrong type is reported with its key.
        for (key, value) in &object {
            let single = Value::Object([(key.clone(), value.clone())].into_iter().collect());
            if let Err(source) = FileConfig::deserialize(&single) {
                return Err(ConfigError::InvalidValue { origin, key: key.clone(), source });
            }
        }
        let mut config = FileConfig::deserialize(&Value::Object(object))
            .map_err(|source| ConfigError::Parse { origin: origin.clone(), source })?;
        config.warnings = findings
            .inert
            .iter()
            .map(|key| format!("config key {key} in {origin}: accepted, has no effect in census"))
            .collect();
        config.origin = Some(origin);
        Ok(config)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let origin = ConfigSource::File(path.to_path_buf());
    if path.extension().is_some_and(|e| e == "hcl") {
        return Err(ConfigError::Hcl { origin });
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { origin: origin.clone(), source })?;
    FileConfig::parse(&text, origin)
}

/// Reads every config source, lowest precedence first: `$CENSUS_DATA_DIR`, the environment's
/// JSON documents, each `-config-file`, then the `.json` files of each `-config-dir`.
pub fn read_config_files(args: &AgentArgs) -> Result<Vec<FileConfig>, ConfigError> {
    read_sources(args, |var| std::env::var(var).ok())
}

/// [`read_config_files`] with the environment given (tests).
pub fn read_sources(
    args: &AgentArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<FileConfig>, ConfigError> {
    let mut files = Vec::new();
    if let Some(dir) = env(DATA_DIR_VAR).filter(|d| !d.is_empty()) {
        let origin = Some(ConfigSource::Env(DATA_DIR_VAR));
        files.push(FileConfig { data_dir: Some(dir.into()), origin, ..Default::default() });
    }
    for var in LOCAL_CONFIG_VARS {
        if let Some(text) = env(var).filter(|t| !t.trim().is_empty()) {
            files.push(FileConfig::parse(&text, ConfigSource::Env(var))?);
        }
    }
    for path in &args.config_file {
        files.push(read_file(path)?);
    }
    for dir in &args.config_dir {
        let origin = || ConfigSource::File(dir.clone());
        let entries =
            std::fs::read_dir(dir).map_err(|source| ConfigError::Read { origin: origin(), source })?;
        let mut paths: Vec<PathBuf> =
            entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
        paths.sort();
        let mut skipped = Vec::new();
        for path in paths {
            match path.extension().and_then(|e| e.to_str()) {
                Some("json" | "hcl") => files.push(read_file(&path)?),
                _ => skipped.push(format!(
                    "skipping file {}, extension must be .json (census reads JSON config only)",
                    path.display()
                )),
            }
        }
        if !skipped.is_empty() {
            files.push(FileConfig { origin: Some(origin()), warnings: skipped, ..Default::default() });
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<FileConfig, ConfigError> {
        FileConfig::parse(json, ConfigSource::File("/etc/consul.d/x.json".into()))
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it_and_the_file_as_consul_does() {
        let err = parse(r#"{"server": true, "foo": 1, "ports": {"htp": 1}}"#).expect_err("unknown keys");
        assert_eq!(
            err.to_string(),
            "failed to parse /etc/consul.d/x.json: 2 errors occurred:\n\
             \t* invalid config key foo\n\t* invalid config key ports.htp"
        );
        let one = parse(r#"{"foo": 1}"#).expect_err("unknown key").to_string();
        assert!(one.ends_with("1 error occurred:\n\t* invalid config key foo"), "{one}");
    }

    #[test]
    fn a_key_consul_knows_but_census_ignores_is_accepted_with_a_warning() {
        let file = parse(r#"{"disable_update_check": true, "ports": {"grpc": 8502}, "log_json": false}"#)
            .expect("accepted");
        assert_eq!(
            file.warnings,
            [
                "config key disable_update_check in /etc/consul.d/x.json: accepted, has no effect in census",
                "config key ports.grpc in /etc/consul.d/x.json: accepted, has no effect in census",
            ]
        );
    }

    #[test]
    fn tls_files_and_acls_are_read() {
        assert!(matches!(
            parse(r#"{"tls": {"defaults": {"ca_path": "/etc/ca"}}}"#),
            Err(ConfigError::Refused { .. })
        ));
        let tls =
            parse(r#"{"verify_incoming": true, "tls": {"internal_rpc": {"verify_server_hostname": true}}}"#)
                .expect("TLS settings are read");
        assert_eq!(tls.verify_incoming, Some(true));
        assert_eq!(tls.tls.expect("tls block").internal_rpc.verify_server_hostname, Some(true));
        assert!(parse(r#"{"encrypt": "pUqJrVyVRj5jsiYEkM/tFQ=="}"#).is_ok(), "gossip encryption is served");
        let acl = parse(
            r#"{"acl": {"enabled": true, "default_policy": "deny", "tokens": {"initial_management": "m"}}}"#,
        )
        .expect("ACLs are served")
        .acl
        .expect("acl block");
        assert_eq!((acl.enabled, acl.default_policy.as_deref()), (Some(true), Some("deny")));
        assert_eq!(acl.tokens.initial_management.as_deref(), Some("m"));
        let err = parse(r#"{"acl": {"tokens": {"initial_managment": "m"}}}"#).expect_err("typo").to_string();
        assert!(err.contains("acl.tokens.initial_managment"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key() {
        let err = parse(r#"{"skip_leave_on_interrupt": "yes"}"#).expect_err("type").to_string();
        assert!(err.contains("skip_leave_on_interrupt") && err.contains("x.json"), "{err}");
    }

    #[test]
    fn the_environment_is_one_more_strict_source_named_by_its_variable() {
        let args = AgentArgs::default();
        let env = |var: &str| match var {
            "CONSUL_LOCAL_CONFIG" => Some(r#"{"skip_leave_on_interrupt": true}"#.to_string()),
            "CENSUS_DATA_DIR" => Some("/census/data".to_string()),
            _ => None,
        };
        let files = read_sources(&args, env).expect("read");
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].data_dir.as_deref(), Some(Path::new("/census/data")));
        assert_eq!(files[1].skip_leave_on_interrupt, Some(true));
        let bad = |var: &str| (var == "CONSUL_LOCAL_CONFIG").then(|| r#"{"skip_leave": true}"#.to_string());
        let err = read_sources(&args, bad).expect_err("unknown key").to_string();
        assert!(
            err.contains("$CONSUL_LOCAL_CONFIG") && err.contains("invalid config key skip_leave"),
            "{err}"
        );
    }

    #[test]
    fn a_config_dir_reads_json_refuses_hcl_and_skips_the_rest_with_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("web.json"), r#"{"service": {"name": "web"}}"#).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not config").expect("write");
        let args = AgentArgs { config_dir: vec![dir.path().into()], ..Default::default() };
        let files = read_sources(&args, |_| None).expect("read");
        assert!(files[0].service.is_some());
        assert!(files[1].warnings[0].contains("notes.txt"), "{:?}", files[1].warnings);
        std::fs::write(dir.path().join("acl.hcl"), "acl { enabled = true }").expect("write");
        let err = read_sources(&args, |_| None).expect_err("hcl").to_string();
        assert!(err.contains("acl.hcl") && err.contains("JSON"), "{err}");
    }
}
