//! `census-sidecar render`: consul-template's job for nginx. Render → discover dependencies → watch
//! each with a blocking query → on change, wait for quiet → render → validate → swap → reload.

pub mod deps;
pub mod exec;
pub mod fetch;
pub mod gotemplate;
pub mod helpers;
mod hold;
pub mod output;
pub mod status;
pub mod template;
mod watch;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use census_client::Client;
use nix::sys::signal::Signal;
use tokio::sync::mpsc::UnboundedReceiver;

use self::deps::Dependency;
use self::helpers::Shared;
use self::hold::Holds;
use self::output::{Installed, OutputError, Reload, Validation};
use self::status::Status;
use self::template::{Rendered, TemplateError, TemplateSet, TemplateSpec, Wait};
use self::watch::Watchers;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot listen on {addr} for /healthz and /metrics: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("-once: {0}")]
    Once(String),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
}

/// Everything `render` runs with.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    pub client: Client,
    pub templates: Vec<TemplateSpec>,
    pub wait: Option<Wait>,
    pub once: bool,
    pub validation: Validation,
    /// SIGHUP this pid file's process after a change (templates without their own command).
    pub reload_pid_file: Option<PathBuf>,
    pub min_instances: usize,
    pub status_addr: Option<SocketAddr>,
    /// `-exec`: the command to start after the first render and supervise.
    pub exec: Option<Vec<String>>,
    /// What `-exec`'s command gets after a change (consul-template's `-exec-reload-signal`).
    pub exec_reload_signal: Signal,
    /// What `-exec`'s command gets when the sidecar is told to stop; the signal it got when unset.
    pub exec_kill_signal: Option<Signal>,
    /// `-dry`: print each new output to stdout as `> DEST` and its text; write and reload nothing.
    pub dry: bool,
}

/// Waits for the supervised command, or forever when there is none.
async fn child_exit(child: &mut Option<exec::Supervised>) -> Result<(), exec::ExecError> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

/// Runs until killed (or, with `once`, until every template has been rendered once).
pub async fn run(settings: RenderSettings) -> Result<(), RenderError> {
    let shared = Arc::new(Shared::new(settings.min_instances));
    let set = TemplateSet::load(settings.templates.clone(), shared.clone())?;
    let status = Arc::new(Status::default());
    if let Some(addr) = settings.status_addr {
        let listener = status::bind(addr).await.map_err(|source| RenderError::Listen { addr, source })?;
        tokio::spawn(status::serve(listener, status.clone()));
    }
    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let mut watchers = Watchers::new(settings.client.clone(), shared, status.clone(), tx);
    let mut child: Option<exec::Supervised> = None;
    let mut printed: HashMap<PathBuf, String> = HashMap::new();
    let stop = crate::process::stop_signal();
    tokio::pin!(stop);
    let mut holds = Holds::new(set.specs.iter().map(|s| s.wait).collect());
    let mut changed: BTreeSet<Dependency> = BTreeSet::new();
    let mut last_used: Vec<BTreeSet<Dependency>> = Vec::new();
    // Which templates have been written (or found current) at least once.
    let mut in_place = vec![false; set.specs.len()];
    loop {
        let mut rendered = set.render();
        let now = tokio::time::Instant::now();
        // `-once` writes each template as soon as its data is there: no holds at all.
        let changes_seen = std::mem::take(&mut changed);
        if !settings.once {
            holds.changed(&changes_seen, &last_used, now);
            for (i, held) in rendered.held.iter_mut().enumerate() {
                *held = !holds.released(i, now);
            }
        }
        last_used = rendered.used.clone();
        Status::count(&status.renders);
        watchers.start(&rendered.pass.used);
        status.waiting_for(&rendered.pass.missing);
        let complete = rendered.pass.missing.is_empty();
        // Watchers of data no template reads any more stop once every query has answered (a
        // key that does not exist has answered: it holds its template back, not the pruning).
        if rendered.pass.missing.is_subset(&rendered.pass.refused) {
            watchers.retain(&rendered.pass.used);
        }
        if !complete {
            tracing::debug!(missing = rendered.pass.missing.len(), "waiting for catalog data");
        }
        // As consul-template: each template is written once everything it reads is there (a
        // template waiting for a key holds back no other); `-once` waits for all of them.
        let ready_now: Vec<bool> = (0..set.specs.len()).map(|i| rendered.ready(i)).collect();
        let acting = if settings.once { complete } else { ready_now.contains(&true) };
        if acting {
            let exec_pid = child.as_ref().and_then(exec::Supervised::pid);
            let ok = if settings.dry {
                print_all(&set, rendered, &status, &mut printed)
            } else {
                install_all(&set, rendered, &settings, &status, exec_pid).await
            };
            if settings.once {
                return if ok { Ok(()) } else { Err(RenderError::Once(last_error(&status))) };
            }
            // As consul-template: the command starts once every template is in place.
            if ok {
                for (done, ready) in in_place.iter_mut().zip(&ready_now) {
                    *done |= *ready;
                }
            }
            let all_in_place = in_place.iter().all(|d| *d);
            if let (Some(argv), None, true) = (&settings.exec, &child, ok && all_in_place && !settings.dry) {
                child = Some(exec::Supervised::spawn(argv)?);
            }
        }
        let release = holds.next_release();
        tokio::select! {
            change = changes.recv() => match change {
                Some(dep) => { changed.insert(dep); }
                // Every watcher is gone: nothing can change any more.
                None => return Ok(child_exit(&mut child).await?),
            },
            _ = tokio::time::sleep_until(release.unwrap_or(now)), if release.is_some() => {}
            exited = child_exit(&mut child) => return Ok(exited?),
            signal = &mut stop => {
                tracing::info!(%signal, "stopping");
                if let Some(c) = child.as_mut() {
                    c.signal(settings.exec_kill_signal.unwrap_or(signal));
                    return Ok(c.wait().await?);
                }
                return Ok(());
            }
        }
        // Quiescence applies once a template has been written, not while the first answers come.
        if let (Some(wait), true) = (settings.wait, in_place.iter().any(|d| *d)) {
            quiesce(&mut changes, wait, &mut changed).await;
        }
        while let Ok(dep) = changes.try_recv() {
            changed.insert(dep);
        }
    }
}

/// Waits until no change has arrived for `wait.min`, or `wait.max` has passed since the first;
/// what changed meanwhile goes into `changed`.
async fn quiesce(
    changes: &mut UnboundedReceiver<Dependency>,
    wait: Wait,
    changed: &mut BTreeSet<Dependency>,
) {
    let deadline = tokio::time::Instant::now() + wait.max;
    loop {
        let quiet_until = (tokio::time::Instant::now() + wait.min).min(deadline);
        match tokio::time::timeout_at(quiet_until, changes.recv()).await {
            Ok(Some(dep)) => {
                changed.insert(dep);
                if tokio::time::Instant::now() >= deadline {
                    return;
                }
            }
            _ => return,
        }
    }
}

fn last_error(status: &Status) -> String {
    match status.health() {
        status::Health::Error(e) => e,
        status::Health::Stale { error, .. } => error,
        status::Health::Waiting(deps) => format!("waiting for {}", deps.join(", ")),
        status::Health::Ok => "failed".into(),
    }
}

/// `-dry`: prints every output that differs from the one printed last for its destination, as
/// consul-template does (`> DEST`, then the text). Returns whether every template rendered.
fn print_all(
    set: &TemplateSet,
    rendered: Rendered,
    status: &Status,
    printed: &mut HashMap<PathBuf, String>,
) -> bool {
    let mut errors = Vec::new();
    let mut stdout = std::io::stdout().lock();
    for (spec, output) in set.specs.iter().zip(rendered.into_ready()) {
        let Some(output) = output else { continue };
        match output {
            Ok(text) if printed.get(&spec.destination) == Some(&text) => {}
            Ok(text) => {
                let _ = write!(stdout, "> {}\n{text}", spec.destination.display());
                printed.insert(spec.destination.clone(), text);
            }
            Err(e) => {
                Status::count(&status.render_errors);
                tracing::error!(template = %spec.source.display(), error = %e, "render failed");
                errors.push(e);
            }
        }
    }
    let _ = stdout.flush();
    if errors.is_empty() {
        status.render_ok();
    } else {
        status.render_failed(errors.join("; "));
    }
    errors.is_empty()
}

/// Installs every rendered output that changed and reloads once per distinct reload action.
/// Returns whether every template rendered and installed cleanly.
async fn install_all(
    set: &TemplateSet,
    rendered: Rendered,
    settings: &RenderSettings,
    status: &Status,
    exec_pid: Option<i32>,
) -> bool {
    let mut reloads: Vec<Reload> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for (spec, output) in set.specs.iter().zip(rendered.into_ready()) {
        let text = match output {
            None => continue,
            Some(Ok(text)) => text,
            Some(Err(e)) => {
                Status::count(&status.render_errors);
                tracing::error!(template = %spec.source.display(), error = %e, "render failed; keeping the last good output");
                errors.push(e);
                continue;
            }
        };
        let (dest, validation, options) = (spec.destination.clone(), settings.validation.clone(), spec.file);
        let installed =
            tokio::task::spawn_blocking(move || output::install_with(&dest, &text, &validation, options))
                .await
                .unwrap_or_else(|e| {
                    Err(OutputError::Spawn { what: "install".into(), source: std::io::Error::other(e) })
                });
        match installed {
            Ok(Installed::Unchanged) => {}
            Ok(Installed::Written) => {
                Status::count(&status.writes);
                tracing::info!(dest = %spec.destination.display(), "rendered");
                let reload = match (&spec.command, &settings.reload_pid_file) {
                    (Some(cmd), _) => {
                        Some(Reload::Command { command: cmd.clone(), timeout: spec.command_timeout })
                    }
                    (None, Some(pid_file)) => Some(Reload::Signal { pid_file: pid_file.clone() }),
                    (None, None) => {
                        exec_pid.map(|pid| Reload::Pid { pid, signal: settings.exec_reload_signal })
                    }
                };
                reloads.extend(reload.filter(|r| !reloads.contains(r)));
            }
            Err(e) => {
                if matches!(e, OutputError::CheckFailed { .. }) {
                    Status::count(&status.check_failures);
                }
                tracing::error!(dest = %spec.destination.display(), error = %e, "not installed");
                errors.push(e.to_string());
            }
        }
    }
    for reload in reloads {
        let result = tokio::task::spawn_blocking(move || output::reload(&reload)).await;
        match result {
            Ok(Ok(())) => Status::count(&status.reloads),
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    match errors.first() {
        None => {
            status.render_ok();
            true
        }
        Some(_) => {
            status.render_failed(errors.join("; "));
            false
        }
    }
}
