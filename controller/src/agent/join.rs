//! Joining: an agent greets each address it was given (`-join`, `-retry-join`, `census join`).
//! A server's Raft port answers who it is and where it gossips; any other address is taken as a
//! gossip address (another agent's, client or server) and greeted there.

use std::net::SocketAddr;
use std::time::Duration;

use crate::client_agent::servers::{ServerAddrs, ServerPool};
use crate::gossip::Gossip;
use crate::raft::network::PeerTransport;
use crate::raft::node::Remote;

const WHOIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an agent syncs its member list in full with a server (serf: 30 s at this size).
const PUSH_PULL_EVERY: Duration = Duration::from_secs(30);

/// Greets one address; Err says why nothing answered there.
pub async fn join_one(
    gossip: &Gossip,
    transport: &PeerTransport,
    pool: Option<&ServerPool>,
    addr: &str,
) -> Result<(), String> {
    match transport.call::<_, ServerAddrs>(addr, "whois", &(), WHOIS_TIMEOUT).await {
        Ok(server) => {
            let gossip_addr: SocketAddr = server
                .gossip_addr
                .parse()
                .map_err(|e| format!("bad gossip address {}: {e}", server.gossip_addr))?;
            gossip.join(&[gossip_addr]).await.map_err(|e| e.to_string())?;
            sync_members(gossip, transport, addr).await;
            if let Some(pool) = pool {
                pool.add_seed(server);
            }
            Ok(())
        }
        Err(whois_error) => {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| format!("{whois_error}; as a gossip address: {e}"))?
                .collect();
            gossip.join(&resolved).await.map_err(|e| e.to_string())
        }
    }
}

/// Takes in everything the server at `raft_addr` knows of the members, at once (as serf's
/// push-pull): otherwise a joining agent meets the others a probe at a time, over minutes in a
/// large cluster.
pub async fn sync_members(gossip: &Gossip, transport: &PeerTransport, raft_addr: &str) {
    let answer: Result<Remote<Vec<foca::Member<crate::gossip::Peer>>>, _> =
        transport.call(raft_addr, "members", &(), WHOIS_TIMEOUT).await;
    match answer {
        Ok(Ok(states)) => {
            if let Err(e) = gossip.apply_states(states).await {
                tracing::debug!(error = %e, "taking in the members a server knows");
            }
        }
        Ok(Err(e)) => tracing::debug!(server = raft_addr, error = %e, "member sync"),
        Err(e) => tracing::debug!(server = raft_addr, error = %e, "member sync"),
    }
}

/// Greets every address until some other member is alive (`-retry-join`), then once more
/// whenever this agent finds itself alone again.
pub async fn retry_join(
    gossip: std::sync::Arc<Gossip>,
    transport: PeerTransport,
    pool: Option<std::sync::Arc<ServerPool>>,
    targets: Vec<String>,
) {
    if targets.is_empty() {
        return;
    }
    let mut round: u64 = 0;
    let mut joined = false;
    let mut last_sync = tokio::time::Instant::now();
    loop {
        let alive = gossip
            .members()
            .iter()
            .any(|m| m.peer.name != gossip.name() && m.status == crate::gossip::Status::Alive);
        if alive && !joined {
            tracing::info!(target: "agent", "Join cluster completed. Synced with initial agents");
        }
        joined = alive;
        // Every 30 s, a full member sync with a random server, as serf's periodic push-pull:
        // repairs what gossip missed (a member this agent never heard of, a stale status).
        if alive && last_sync.elapsed() >= PUSH_PULL_EVERY {
            last_sync = tokio::time::Instant::now();
            let servers: Vec<String> = gossip
                .alive_servers()
                .into_iter()
                .filter(|p| p.name != gossip.name())
                .filter_map(|p| p.raft_addr())
                .collect();
            if let Some(addr) = servers.get(rand::random::<usize>() % servers.len().max(1)) {
                sync_members(&gossip, &transport, addr).await;
            }
        }
        if !alive {
            for addr in &targets {
                if let Err(e) = join_one(&gossip, &transport, pool.as_deref(), addr).await
                    && round.is_multiple_of(10)
                {
                    tracing::info!(target: "agent", "Join cluster failed, will retry: {addr}: {e}");
                }
            }
        }
        round += 1;
        let mut changes = gossip.changes();
        let pause = if alive { Duration::from_secs(30) } else { Duration::from_secs(1) };
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
