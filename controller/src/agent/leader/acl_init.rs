//! The leader keeps the ACL system's built-in records, as Consul's leader does when it takes
//! over: the global-management policy, the anonymous token, and (when `acl.tokens.
//! initial_management` is set) the initial management token, which also counts as the
//! bootstrap, so `/v1/acl/bootstrap` then refuses.

use std::sync::Arc;
use std::time::Duration;

use super::leadership::Leadership;
use crate::acl::records::{ANONYMOUS_ACCESSOR, ANONYMOUS_SECRET, Policy, Token};
use crate::acl::{Acl, store};
use crate::catalog::{Command, CommandResult};
use crate::http::acl_builtins::{global_management, management_token};
use crate::raft::ClusterNode;

/// The writes that bring the built-in records into being; empty once they all exist.
fn missing(cluster: &ClusterNode, acl: &Acl) -> Vec<Command> {
    let initial = acl.config.tokens.initial_management.clone();
    cluster.catalog.read(|s| {
        let mut writes = Vec::new();
        if store::get::<Policy>(s, crate::acl::records::GLOBAL_MANAGEMENT_ID).is_none() {
            writes.push(store::put(&global_management(), Some(0)));
        }
        if store::get::<Token>(s, ANONYMOUS_ACCESSOR).is_none() {
            let anonymous = Token {
                accessor_id: ANONYMOUS_ACCESSOR.into(),
                secret_id: ANONYMOUS_SECRET.into(),
                description: "Anonymous Token".into(),
                create_time: crate::agent::log_stream::rfc3339(std::time::SystemTime::now()),
                ..Token::default()
            };
            writes.push(store::put(&anonymous, Some(0)));
        }
        if !initial.is_empty() && store::by_name::<Token>(s, &initial).is_none() {
            let accessor = crate::http::acl_builtins::new_id();
            writes.push(store::put(
                &management_token(accessor, initial.clone(), "Initial Management Token"),
                Some(0),
            ));
        }
        if !initial.is_empty() && store::bootstrapped(s).is_none() {
            writes.push(store::mark_bootstrapped(None));
        }
        writes
    })
}

pub async fn run(cluster: Arc<ClusterNode>, acl: Arc<Acl>) {
    let mut leadership = Leadership::default();
    loop {
        leadership.lead(&cluster).await;
        let writes = missing(&cluster, &acl);
        if writes.is_empty() {
            cluster.leadership_changed(cluster.leading_term()).await;
            continue;
        }
        match cluster.write(Command::Batch(writes)).await {
            Ok((_, CommandResult::Batch(results))) => {
                if results.iter().any(|r| matches!(r, CommandResult::Rejected(_))) {
                    tracing::warn!(?results, "ACL built-ins: a write was refused");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "ACL built-ins: writing them failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
