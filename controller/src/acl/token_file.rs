//! `acl.enable_token_persistence`: the tokens an operator sets with `PUT /v1/agent/token/:kind`
//! are kept in `DATA_DIR/acl-tokens.json` (as Consul names the file and its keys) and loaded
//! over the configured ones when the agent starts, so a token set at run time survives a
//! restart. The file holds secrets: it is written whole (temporary file, fsync, rename) and
//! readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AgentTokens;

pub const FILE: &str = "acl-tokens.json";

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: serde_json::Error },
}

/// The file's content: only the tokens set through the API, by Consul's keys.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Persisted {
    #[serde(skip_serializing_if = "String::is_empty")]
    agent: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    default: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    agent_recovery: String,
    /// The key older Consul versions wrote for the recovery token: read, never written.
    #[serde(rename = "agent_master", skip_serializing)]
    legacy_agent_master: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    replication: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    config_file_service_registration: String,
}

/// The tokens kept in `dir` (none set when there is no file).
pub fn load(dir: &Path) -> Result<AgentTokens, TokenFileError> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AgentTokens::default()),
        Err(source) => return Err(TokenFileError::Io { path, source }),
    };
    let persisted: Persisted =
        serde_json::from_str(&text).map_err(|source| TokenFileError::Format { path, source })?;
    let agent_recovery = if persisted.agent_recovery.is_empty() {
        persisted.legacy_agent_master
    } else {
        persisted.agent_recovery
    };
    Ok(AgentTokens {
        agent: persisted.agent,
        default: persisted.default,
        agent_recovery,
        replication: persisted.replication,
        config_file_service_registration: persisted.config_file_service_registration,
        initial_management: String::new(),
    })
}

/// Records `api_set` (the tokens set through the API so far) in `dir`.
pub fn save(dir: &Path, api_set: &AgentTokens) -> Result<(), TokenFileError> {
    let persisted = Persisted {
        agent: api_set.agent.clone(),
        default: api_set.default.clone(),
        agent_recovery: api_set.agent_recovery.clone(),
        replication: api_set.replication.clone(),
        config_file_service_registration: api_set.config_file_service_registration.clone(),
        legacy_agent_master: String::new(),
    };
    let body = serde_json::to_vec(&persisted)
        .map_err(|source| TokenFileError::Format { path: dir.join(FILE), source })?;
    write_secret(dir, FILE, &body)
}

/// Writes `body` to `dir/name` whole (temporary file, fsync, rename, directory fsync), readable
/// by its owner only: the file holds tokens.
pub fn write_secret(dir: &Path, name: &str, body: &[u8]) -> Result<(), TokenFileError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |source| TokenFileError::Io { path: tmp.clone(), source };
        // A leftover temporary file would keep its own permissions: start from a new one.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        file.write_all(body).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    let io = |source| TokenFileError::Io { path: path.clone(), source };
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_set_through_the_api_come_back_over_the_configured_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut api_set = AgentTokens::default();
        api_set.set("default", "d-from-api".into());
        api_set.set("agent_recovery", "r-from-api".into());
        save(dir.path(), &api_set).expect("save");
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("file");
        assert_eq!(text, r#"{"default":"d-from-api","agent_recovery":"r-from-api"}"#);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE)).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secrets readable by the owner only");

        let mut configured = AgentTokens::default();
        configured.set("default", "d-from-config".into());
        configured.set("agent", "a-from-config".into());
        configured.overlay(&load(dir.path()).expect("load"));
        assert_eq!(configured.default, "d-from-api");
        assert_eq!(configured.agent_recovery, "r-from-api");
        assert_eq!(
            configured.agent, "a-from-config",
            "a token never set through the API stays as configured"
        );
    }

    #[test]
    fn a_file_older_consul_wrote_gives_its_recovery_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), r#"{"agent_master":"old-key","agent":"a"}"#).expect("write");
        let tokens = load(dir.path()).expect("load");
        assert_eq!((tokens.agent_recovery.as_str(), tokens.agent.as_str()), ("old-key", "a"));
    }

    #[test]
    fn no_file_changes_nothing_and_a_broken_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("no file"), AgentTokens::default());
        std::fs::write(dir.path().join(FILE), "{not json").expect("write");
        assert!(matches!(load(dir.path()), Err(TokenFileError::Format { .. })));
    }
}
