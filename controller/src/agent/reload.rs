//! Service definitions from `-config-file` and `-config-dir`, applied at start and again on
//! SIGHUP or `PUT /v1/agent/reload` (`census reload`): new definitions are registered, changed
//! ones re-registered, and services whose definition was removed are deregistered. Which service
//! IDs came from files is kept in the data dir, so a removal while the agent was down is applied
//! at the next start.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::config::{AgentArgs, AgentConfig, read_config_files};
use crate::catalog::Command;
use crate::http::{AppState, ReloadRequest};

/// What one reload did.
#[derive(Debug, Default)]
pub struct Applied {
    pub registered: usize,
    pub deregistered: usize,
}

struct ConfigServices {
    args: AgentArgs,
    /// IDs of the services this agent registered from files.
    from_files: BTreeSet<String>,
    record: Option<PathBuf>,
}

impl ConfigServices {
    fn open(args: AgentArgs, data_dir: Option<&std::path::Path>) -> ConfigServices {
        let record = data_dir.map(|d| d.join("config-services.json"));
        let from_files = record
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        ConfigServices { args, from_files, record }
    }

    fn save(&self) {
        if let Some(path) = &self.record {
            let bytes = serde_json::to_vec(&self.from_files).unwrap_or_default();
            if let Err(e) = std::fs::write(path, bytes) {
                tracing::warn!(path = %path.display(), error = %e, "cannot record config services");
            }
        }
    }

    /// Reads the files again and brings the catalog in line. A file that does not parse, or a
    /// definition that is invalid, changes nothing at all.
    async fn apply(&mut self, state: &AppState) -> Result<Applied, String> {
        let files = read_config_files(&self.args).map_err(|e| e.to_string())?;
        let config = AgentConfig::resolve(&self.args, &files).map_err(|e| e.to_string())?;
        let mut registrations = Vec::new();
        for svc in &config.services {
            let expanded = crate::http::agent::agent_registrations(state, svc, true)
                .map_err(|e| format!("service {:?}: {e}", svc.name))?;
            registrations.extend(expanded);
        }
        let wanted: BTreeSet<String> =
            registrations.iter().filter_map(|r| r.service.as_ref().map(|s| s.id.clone())).collect();
        let mut applied = Applied::default();
        for reg in registrations {
            let id = reg.service.as_ref().map(|s| s.id.clone()).unwrap_or_default();
            if state.servers.is_some() {
                // A client agent syncs these with `config_file_service_registration`, as Consul.
                state.acl.registrations.set(&id, &state.acl.config_file_service_token());
            }
            state.write(Command::Register(reg)).await.map_err(|e| e.to_string())?;
            // Consul's words, which users (seed 001) look for to know the definition was taken.
            tracing::info!(target: "agent", "Synced service '{id}'");
            applied.registered += 1;
        }
        let removed: Vec<String> = self.from_files.difference(&wanted).cloned().collect();
        for id in removed {
            let cmd =
                Command::DeregisterService { node: state.info.node_name.clone(), service_id: id.clone() };
            state.write(cmd).await.map_err(|e| e.to_string())?;
            state.acl.registrations.forget(&id);
            tracing::info!(service = %id, "Deregistered service (its definition was removed)");
            applied.deregistered += 1;
        }
        self.from_files = wanted;
        self.save();
        Ok(applied)
    }
}

async fn hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Applies the definitions once a leader takes writes, then on every SIGHUP and reload request.
pub async fn serve(
    state: AppState,
    args: AgentArgs,
    data_dir: Option<PathBuf>,
    mut requests: mpsc::Receiver<ReloadRequest>,
    tls: crate::tls::Reloader,
) {
    // Taken first: from here on SIGHUP reloads instead of ending the process.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "cannot handle SIGHUP"))
        .ok();
    let mut services = ConfigServices::open(args, data_dir.as_deref());
    loop {
        match services.apply(&state).await {
            Ok(done) => {
                tracing::info!(
                    registered = done.registered,
                    deregistered = done.deregistered,
                    "service definitions applied"
                );
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, "service definitions not applied yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    loop {
        let reply: Option<oneshot::Sender<Result<String, String>>> = tokio::select! {
            _ = hangup(&mut hup) => {
                tracing::info!("caught SIGHUP; reloading service definitions");
                None
            }
            request = requests.recv() => match request {
                Some(reply) => Some(reply),
                None => return,
            },
        };
        // Certificates first: a bad file is logged and the old certificates stay in use.
        match tls.reload() {
            Ok(0) => {}
            Ok(n) => tracing::info!(listeners = n, "TLS certificates read again"),
            Err(e) => tracing::error!(error = %e, "TLS certificates not reloaded; the old ones stay in use"),
        }
        let result = services.apply(&state).await.map(|done| {
            format!("registered {} service(s), deregistered {}", done.registered, done.deregistered)
        });
        match &result {
            Ok(summary) => tracing::info!(%summary, "reloaded service definitions"),
            Err(e) => tracing::error!(error = %e, "reload refused; nothing changed"),
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}
