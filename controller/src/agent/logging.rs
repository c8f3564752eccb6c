//! The agent's log: always on stderr (what `docker logs` and a terminal show), and with
//! `-log-file` also appended to that file, as Consul writes its log to both its console and the
//! file. The file's path is already resolved by the config (`census.log` in a directory).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("Failed to setup logging: cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("Failed to setup logging: {0}")]
    Init(String),
}

/// Installs the process-wide subscriber: `level` for census (RUST_LOG overrides it), warnings
/// only from openraft, and each of openraft's lines at most once per 10 s (log_repeats.rs).
pub fn init(level: &str, file: Option<&Path>) -> Result<(), LogError> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},openraft=warn")));
    let console = fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr);
    let file = match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| LogError::Open { path: path.to_path_buf(), source })?;
            Some(fmt::layer().with_ansi(false).with_writer(std::sync::Mutex::new(f)))
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(super::log_repeats::RepeatLimit::new(std::time::Duration::from_secs(10)))
        .with(console)
        .with(file)
        .with(super::log_stream::MonitorLayer)
        .try_init()
        .map_err(|e| LogError::Init(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_file_gets_the_same_lines_as_the_console() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("consul.log");
        init("info", Some(&path)).expect("the only subscriber of this test binary");
        tracing::warn!(target: "agent", "config key telemetry: accepted, has no effect in census");
        let logged = std::fs::read_to_string(&path).expect("log file");
        assert!(logged.contains("WARN agent: config key telemetry: accepted"), "{logged}");
        assert!(!logged.contains('\u{1b}'), "no colour codes in the file");
        let missing = dir.path().join("logs/consul.log");
        assert!(matches!(init("info", Some(&missing)), Err(LogError::Open { .. })));
    }
}
