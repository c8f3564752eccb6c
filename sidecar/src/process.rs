//! What every sidecar subcommand shares: reaching the agent, retrying it, and being told to stop.

use std::time::Duration;

use census_client::{Client, ClientError};
use nix::sys::signal::Signal;

/// The first wait after a failure; it doubles up to `BACKOFF_MAX`.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// The wait after `current` failed again.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

/// The agent client: `addr` (a flag or config value), else $CENSUS_HTTP_ADDR, $CONSUL_HTTP_ADDR,
/// 127.0.0.1:8500; `token`, else $CONSUL_HTTP_TOKEN.
pub fn agent_client(addr: Option<String>, token: Option<String>) -> Result<Client, ClientError> {
    let addr = addr
        .or_else(|| std::env::var("CENSUS_HTTP_ADDR").ok())
        .or_else(|| std::env::var("CONSUL_HTTP_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:8500".into());
    let token = token.or_else(|| std::env::var("CONSUL_HTTP_TOKEN").ok());
    Ok(Client::new(&addr)?.with_token(token))
}

/// Resolves on SIGTERM or SIGINT, with the signal.
pub async fn stop_signal() -> Signal {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => Signal::SIGTERM,
            _ = int.recv() => Signal::SIGINT,
        },
        _ => std::future::pending().await,
    }
}
