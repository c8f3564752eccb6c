//! How the agent stops: on SIGINT, SIGTERM or `PUT /v1/agent/leave` (`census leave`), with or
//! without leaving first, as Consul decides it: SIGINT leaves unless `skip_leave_on_interrupt`
//! (default true on servers), SIGTERM leaves only with `leave_on_terminate` (default true on
//! other agents). A leave gets 15 seconds; a second signal stops the agent at once.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::catalog::Command;
use crate::http::AppState;
use crate::raft::MembershipChange;

/// How long a graceful leave may take before the agent stops anyway (Consul's value).
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(15);

/// The settings that decide whether a signal makes the agent leave.
#[derive(Debug, Clone, Copy)]
pub struct LeavePolicy {
    pub skip_leave_on_interrupt: bool,
    pub leave_on_terminate: bool,
}

/// Graceful leave: the node's services leave the catalog and the server leaves the Raft
/// configuration. What `census leave` and `PUT /v1/agent/leave` do.
pub async fn leave(state: &AppState) {
    // Gossip first: every agent marks this one left (not failed), and the leader stops keeping
    // its node.
    state.gossip.leave().await;
    let node = state.info.node_name.clone();
    if let Err(e) = state.write_to_catalog(Command::DeregisterNode { node }, state.acl.agent_token()).await {
        tracing::warn!(error = %e, "could not remove this node from the catalog");
    }
    let Some(server) = &state.server else { return };
    let voters = server.servers().into_iter().filter(|(_, _, v)| *v).count();
    if voters > 1
        && let Err(e) = server.membership_via_leader(MembershipChange::Remove { id: server.id }).await
    {
        tracing::warn!(error = %e, "could not leave the Raft configuration");
    }
}

/// `leave`, bounded by the graceful timeout.
pub async fn leave_within_grace(state: &AppState) {
    if tokio::time::timeout(GRACEFUL_TIMEOUT, leave(state)).await.is_err() {
        tracing::info!(target: "agent", "Timeout on graceful leave");
    }
}

/// Time for the answer to `PUT /v1/agent/leave` to go out before the process ends.
const ANSWER_DRAIN: Duration = Duration::from_millis(200);

async fn next(signal: &mut Option<Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

fn listen(kind: SignalKind, name: &str) -> Option<Signal> {
    signal(kind).inspect_err(|e| tracing::warn!(error = %e, "cannot handle {name}")).ok()
}

/// Waits until the agent is told to stop, and leaves first when that is what was asked for.
pub async fn until_stopped(state: &AppState, policy: LeavePolicy) {
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM");
    let graceful = tokio::select! {
        _ = next(&mut interrupt) => {
            tracing::info!(target: "agent", "Caught signal: interrupt");
            !policy.skip_leave_on_interrupt
        }
        _ = next(&mut terminate) => {
            tracing::info!(target: "agent", "Caught signal: terminated");
            policy.leave_on_terminate
        }
        // The handler has left already.
        _ = state.leave.notified() => {
            tracing::info!(target: "agent", "Graceful leave complete");
            tokio::time::sleep(ANSWER_DRAIN).await;
            return;
        }
    };
    if !graceful {
        tracing::info!(target: "agent", "Graceful shutdown disabled. Exiting (without leaving the cluster)");
        return;
    }
    tracing::info!(target: "agent", "Gracefully shutting down agent...");
    tokio::select! {
        _ = leave(state) => tracing::info!(target: "agent", "Graceful exit completed"),
        _ = tokio::time::sleep(GRACEFUL_TIMEOUT) => {
            tracing::info!(target: "agent", "Timeout on graceful leave. Exiting");
        }
        _ = next(&mut interrupt) => tracing::info!(target: "agent", "Caught second signal, Exiting"),
        _ = next(&mut terminate) => tracing::info!(target: "agent", "Caught second signal, Exiting"),
    }
}
