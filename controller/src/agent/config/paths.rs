//! Paths the agent is given: the log file and the web UI's URL path, as Consul interprets them.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// The file name used when `-log-file` names a directory (Consul uses `consul.log`).
pub const DEFAULT_LOG_NAME: &str = "census.log";

/// `-log-file`: a path ending in `/`, or naming an existing directory, means `census.log` in it;
/// any other path is the file itself. Its directory must exist: Consul does not create it either
/// (it fails with "Failed to setup logging: open logs/consul.log: no such file or directory").
pub fn log_file(path: &Path) -> Result<PathBuf, ConfigError> {
    let names_dir = path.as_os_str().to_string_lossy().ends_with('/') || path.is_dir();
    let file = if names_dir { path.join(DEFAULT_LOG_NAME) } else { path.to_path_buf() };
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(ConfigError::Invalid(format!(
            "Failed to setup logging: cannot open {}: directory {} does not exist",
            file.display(),
            dir.display()
        )));
    }
    Ok(file)
}

/// Consul's `UIPathBuilder`: slashes are added around the path (`ui`, `/ui` and `ui/` all become
/// `/ui/`); unset or empty means `/ui/`.
pub fn ui_content_path(given: Option<&str>) -> String {
    match given.filter(|p| !p.is_empty()) {
        None => "/ui/".to_string(),
        Some(p) => format!("/{}/", p.trim_matches('/')),
    }
}

/// The UI is served at `/ui/` only; any other content path is refused rather than ignored.
pub fn check_ui_content_path(path: &str) -> Result<(), ConfigError> {
    if path == "/ui/" {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "-ui-content-path {path}: census serves its web UI at /ui/ only (use /ui/ or leave it unset)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_content_paths_are_normalized_as_consul_does() {
        for given in ["ui/", "/ui", "ui", "/ui/", "//ui//"] {
            assert_eq!(ui_content_path(Some(given)), "/ui/", "{given}");
        }
        assert_eq!(ui_content_path(None), "/ui/");
        assert_eq!(ui_content_path(Some("")), "/ui/");
        assert_eq!(ui_content_path(Some("consul/ui")), "/consul/ui/");
        assert!(check_ui_content_path("/consul/ui/").is_err());
    }

    #[test]
    fn a_log_file_in_a_directory_that_exists_is_used_as_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let named = dir.path().join("consul.log");
        assert_eq!(log_file(&named).expect("file"), named);
        assert_eq!(log_file(dir.path()).expect("dir"), dir.path().join(DEFAULT_LOG_NAME));
        let slash = PathBuf::from(format!("{}/", dir.path().display()));
        assert_eq!(log_file(&slash).expect("dir/"), dir.path().join(DEFAULT_LOG_NAME));
    }

    #[test]
    fn a_log_file_in_a_missing_directory_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = log_file(&dir.path().join("logs/consul.log")).expect_err("missing dir").to_string();
        assert!(err.starts_with("Failed to setup logging") && err.contains("logs"), "{err}");
    }
}
