//! What the renderer reports on its HTTP endpoint: `/healthz` and Prometheus `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use super::deps::Dependency;

#[derive(Debug, Default)]
struct Sync {
    /// Last answer from the catalog, for any dependency.
    last_success: Option<Instant>,
    /// Dependencies whose last query failed, with the error.
    failing: BTreeMap<Dependency, String>,
    last_render_error: Option<String>,
    /// Data the last render pass read that has not arrived or holds output back (a missing key).
    waiting: Vec<String>,
}

/// Counters and sync state, shared by the render loop, the watchers and the endpoint.
#[derive(Debug)]
pub struct Status {
    started: Instant,
    pub renders: AtomicU64,
    pub writes: AtomicU64,
    pub reloads: AtomicU64,
    pub check_failures: AtomicU64,
    pub render_errors: AtomicU64,
    sync: Mutex<Sync>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            started: Instant::now(),
            renders: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            check_failures: AtomicU64::new(0),
            render_errors: AtomicU64::new(0),
            sync: Mutex::new(Sync::default()),
        }
    }
}

/// The health the endpoint reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Ok,
    /// The catalog has not answered some query; seconds since the last answer.
    Stale {
        seconds: f64,
        error: String,
    },
    /// The last render or check failed; the previous output is still in place.
    Error(String),
    /// Some template's output is held back until this data exists (consul-template's `key` on a
    /// missing key, `safeLs` on an empty prefix, data not fetched yet).
    Waiting(Vec<String>),
}

impl Status {
    fn sync(&self) -> std::sync::MutexGuard<'_, Sync> {
        self.sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn watch_ok(&self, dep: &Dependency) {
        let mut s = self.sync();
        s.last_success = Some(Instant::now());
        s.failing.remove(dep);
    }

    pub fn watch_failed(&self, dep: &Dependency, error: String) {
        self.sync().failing.insert(dep.clone(), error);
    }

    pub fn forget(&self, dep: &Dependency) {
        self.sync().failing.remove(dep);
    }

    pub fn render_failed(&self, error: String) {
        self.sync().last_render_error = Some(error);
    }

    pub fn waiting_for(&self, deps: &std::collections::BTreeSet<Dependency>) {
        self.sync().waiting = deps.iter().map(ToString::to_string).collect();
    }

    pub fn render_ok(&self) {
        self.sync().last_render_error = None;
    }

    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Seconds since the catalog last answered (since start when it never has).
    pub fn sync_age(&self) -> f64 {
        let since = self.sync().last_success.unwrap_or(self.started);
        since.elapsed().as_secs_f64()
    }

    pub fn health(&self) -> Health {
        let age = self.sync_age();
        let s = self.sync();
        if let Some((dep, error)) = s.failing.iter().next() {
            return Health::Stale { seconds: age, error: format!("{dep}: {error}") };
        }
        match &s.last_render_error {
            Some(e) => Health::Error(e.clone()),
            None if !s.waiting.is_empty() => Health::Waiting(s.waiting.clone()),
            None => Health::Ok,
        }
    }
}

async fn healthz(State(status): State<Arc<Status>>) -> impl IntoResponse {
    let (code, body) = match status.health() {
        Health::Ok => (StatusCode::OK, json!({"status": "ok", "sync_age_seconds": status.sync_age()})),
        Health::Stale { seconds, error } => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "stale", "sync_age_seconds": seconds, "error": error}),
        ),
        Health::Error(e) => (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "error", "error": e})),
        Health::Waiting(deps) => {
            (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "waiting", "waiting_for": deps}))
        }
    };
    (code, axum::Json(body))
}

async fn metrics(State(status): State<Arc<Status>>) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let stale = u8::from(matches!(status.health(), Health::Stale { .. }));
    format!(
        "# TYPE census_render_renders_total counter\ncensus_render_renders_total {}\n\
         # TYPE census_render_writes_total counter\ncensus_render_writes_total {}\n\
         # TYPE census_render_reloads_total counter\ncensus_render_reloads_total {}\n\
         # TYPE census_render_check_failures_total counter\ncensus_render_check_failures_total {}\n\
         # TYPE census_render_errors_total counter\ncensus_render_errors_total {}\n\
         # TYPE census_render_sync_age_seconds gauge\ncensus_render_sync_age_seconds {:.3}\n\
         # TYPE census_render_stale gauge\ncensus_render_stale {stale}\n",
        get(&status.renders),
        get(&status.writes),
        get(&status.reloads),
        get(&status.check_failures),
        get(&status.render_errors),
        status.sync_age(),
    )
}

/// Serves `/healthz` and `/metrics` on an already bound listener.
pub async fn serve(listener: tokio::net::TcpListener, status: Arc<Status>) {
    let app =
        Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(status);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "status endpoint stopped");
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
