//! The token each service was registered with on this agent. As Consul's agent does, a client
//! agent writes each service (with its checks) to the catalog with the token that registered it,
//! and the node itself (with its node checks) with the agent token; the servers check each
//! against its token. Kept in `DATA_DIR/registration-tokens.json` so that a
//! restarted agent syncs its services as before (the file holds secrets: mode 0600, written
//! whole).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::token_file::{TokenFileError, write_secret};

pub const FILE: &str = "registration-tokens.json";

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct Kept {
    services: BTreeMap<String, String>,
}

/// By service ID; in memory only without a data dir.
#[derive(Debug, Default)]
pub struct RegistrationTokens {
    dir: Option<PathBuf>,
    kept: Mutex<Kept>,
}

impl RegistrationTokens {
    /// The tokens kept in `dir` before (none when there is no file; an unreadable file is logged
    /// and replaced by the next change).
    pub fn kept_in(dir: PathBuf) -> RegistrationTokens {
        let path = dir.join(FILE);
        let read = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Kept::default()),
            read => read
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice::<Kept>(&bytes).map_err(|e| e.to_string())),
        };
        let kept = read.unwrap_or_else(|e| {
            tracing::warn!(target: "agent", path = %path.display(), error = %e, "unreadable registration tokens");
            Kept::default()
        });
        RegistrationTokens { dir: Some(dir), kept: Mutex::new(kept) }
    }

    /// Records that service `id` was registered with `secret` (empty: with no token, so the
    /// default token acts for it).
    pub fn set(&self, id: &str, secret: &str) {
        self.change(|kept| match secret.is_empty() {
            true => kept.services.remove(id).is_some(),
            false => kept.services.insert(id.into(), secret.into()).as_deref() != Some(secret),
        });
    }

    pub fn forget(&self, id: &str) {
        self.change(|kept| kept.services.remove(id).is_some());
    }

    /// The token service `id` was registered with; empty when none was given.
    pub fn of(&self, id: &str) -> String {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.services.get(id).cloned().unwrap_or_default()
    }

    /// Applies `edit` and saves when it changed something.
    fn change(&self, edit: impl FnOnce(&mut Kept) -> bool) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if !edit(&mut kept) {
            return;
        }
        if let Some(dir) = &self.dir
            && let Err(e) = save(dir, &kept)
        {
            tracing::warn!(target: "agent", error = %e, "cannot keep registration tokens");
        }
    }
}

fn save(dir: &std::path::Path, kept: &Kept) -> Result<(), TokenFileError> {
    let body =
        serde_json::to_vec(kept).map_err(|source| TokenFileError::Format { path: dir.join(FILE), source })?;
    write_secret(dir, FILE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_survive_a_restart_and_an_empty_token_means_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = RegistrationTokens::kept_in(dir.path().to_path_buf());
        tokens.set("web-1", "s-web");
        tokens.set("db-1", "s-db");
        tokens.set("db-1", "");
        tokens.set("gone-1", "s-gone");
        tokens.forget("gone-1");

        let again = RegistrationTokens::kept_in(dir.path().to_path_buf());
        assert_eq!(again.of("web-1"), "s-web");
        assert_eq!(again.of("db-1"), "", "registered again without a token");
        assert_eq!(again.of("gone-1"), "");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE)).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secrets readable by the owner only");
    }
}
