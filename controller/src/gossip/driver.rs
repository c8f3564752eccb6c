//! The task that owns foca: it reads the UDP socket (opening datagrams with the keyring), fires
//! foca's timers in order, takes requests (join, leave, broadcast, keyring changes) and turns
//! foca's notifications into the member table.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{AccumulatingRuntime, Foca, OwnedNotification, Timer};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::codec::KeyOp;
use super::codec::{BincodeCodec, Item, Items};
use super::identity::Peer;
use super::key_reports::KeyReports;
use super::keyring::{KeyError, Keyring, Received, Rejection};
use super::members::{MemberTable, Status};
use super::{GossipError, Input, LEAVE_PROPAGATION, MAX_PACKET, REJECT_EVERY, REPORT_AFTER_JOIN};

pub(super) type Engine = Foca<Peer, BincodeCodec, rand_small::rngs::SmallRng, Items>;

pub(super) struct Driver {
    pub(super) foca: Engine,
    pub(super) keyring: Arc<Mutex<Keyring>>,
    pub(super) rejections: Arc<Mutex<HashMap<SocketAddr, Rejection>>>,
    /// When each sender was last told its datagrams cannot be opened.
    pub(super) refused: HashMap<SocketAddr, Instant>,
    pub(super) socket: UdpSocket,
    pub(super) runtime: AccumulatingRuntime<Peer>,
    /// foca's timers by deadline, in the order they were asked for.
    pub(super) timers: BTreeMap<(Instant, u64), Timer<Peer>>,
    pub(super) timer_seq: u64,
    pub(super) table: Arc<Mutex<MemberTable>>,
    pub(super) version: watch::Sender<u64>,
    pub(super) events: tokio::sync::broadcast::Sender<Vec<u8>>,
    pub(super) leaving: Option<(Instant, oneshot::Sender<()>)>,
    pub(super) reports: Arc<Mutex<KeyReports>>,
    /// How many times the leader asked this member to resync.
    pub(super) resyncs: Arc<std::sync::atomic::AtomicU64>,
    /// When this member next reports its keys (after members join; only with encryption on).
    pub(super) report_due: Option<Instant>,
}

impl Driver {
    pub(super) async fn run(
        mut self,
        mut input: mpsc::Receiver<Input>,
        mut items: mpsc::UnboundedReceiver<Item>,
    ) {
        let mut buf = vec![0u8; 65_536];
        let far = || Instant::now() + Duration::from_secs(3600);
        loop {
            let next_timer = self.timers.keys().next().map_or_else(far, |(at, _)| *at);
            let leave_at = self.leaving.as_ref().map_or_else(far, |(at, _)| *at);
            let report_at = self.report_due.unwrap_or_else(far);
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => self.receive(&buf[..n], from).await,
                    Err(e) => tracing::debug!(error = %e, "gossip socket"),
                },
                request = input.recv() => match request {
                    Some(request) => self.handle(request),
                    None => return,
                },
                Some(item) = items.recv() => self.deliver(item),
                _ = tokio::time::sleep_until(next_timer) => self.fire_timers(),
                _ = tokio::time::sleep_until(report_at) => self.report_keys(),
                _ = tokio::time::sleep_until(leave_at) => {
                    if let Err(e) = self.foca.leave_cluster(&mut self.runtime) {
                        tracing::debug!(error = %e, "leaving the gossip pool");
                    }
                    self.flush().await;
                    if let Some((_, done)) = self.leaving.take() {
                        let _ = done.send(());
                    }
                    return;
                }
            }
            self.flush().await;
        }
    }

    /// One datagram: opened with the keyring and handed to foca; a rejection of this member's
    /// datagrams noted (a join reports it); a datagram that cannot be opened refused, and its
    /// sender told why.
    async fn receive(&mut self, datagram: &[u8], from: SocketAddr) {
        let received = self.keyring.lock().unwrap_or_else(|p| p.into_inner()).open(datagram).into_owned();
        match received {
            Received::Gossip(data) => {
                if let Err(e) = self.foca.handle_data(&data, &mut self.runtime) {
                    tracing::debug!(%from, error = %e, "gossip packet dropped");
                }
            }
            Received::Rejected(reason) => {
                let reason = reason.unwrap_or(Rejection::UnknownKey);
                let new = self.rejections.lock().unwrap_or_else(|p| p.into_inner()).insert(from, reason);
                if new != Some(reason) {
                    tracing::warn!(target: "agent", "memberlist: {from} turned this agent away: {}", reason.as_sender());
                }
                self.version.send_modify(|v| *v += 1);
            }
            Received::Refused(reason) => {
                let now = Instant::now();
                if self.refused.get(&from).is_some_and(|at| now.duration_since(*at) < REJECT_EVERY) {
                    return;
                }
                self.refused.insert(from, now);
                tracing::warn!(target: "agent", "memberlist: failed to receive from {from}: {}", reason.as_receiver());
                if let Err(e) = self.socket.send_to(&reason.datagram(), from).await {
                    tracing::debug!(%from, error = %e, "gossip send");
                }
            }
        }
    }

    fn handle(&mut self, request: Input) {
        let result = match request {
            Input::Announce(addr) => self.foca.announce(Peer::at(addr), &mut self.runtime),
            Input::Broadcast(item, done) => {
                let _ = done.send(self.add_broadcast(&item));
                Ok(())
            }
            Input::Leave(done) => {
                let me = self.foca.identity().clone();
                let word = Item::Leave { name: me.name.clone(), bump: me.bump };
                if let Err(e) = self.add_broadcast(&word) {
                    tracing::debug!(error = %e, "announcing the leave");
                }
                // Alone, there is no one to tell.
                let wait = if self.foca.num_members() == 0 { Duration::ZERO } else { LEAVE_PROPAGATION };
                self.leaving = Some((Instant::now() + wait, done));
                // Spread the word at once rather than at the next periodic gossip.
                self.foca.gossip(&mut self.runtime)
            }
            Input::KeyOp(op, key, done) => {
                let applied = self.apply_key_op(op, &key);
                if applied.is_ok() {
                    let id = format!("{}/{}", self.foca.identity().name, rand::random::<u64>());
                    if let Err(e) = self.add_broadcast(&Item::KeyOp { id, op, key }) {
                        tracing::debug!(error = %e, "spreading a keyring change");
                    }
                }
                let _ = done.send(applied);
                Ok(())
            }
            Input::States(reply) => {
                let _ = reply.send(self.foca.iter_membership_state().cloned().collect());
                Ok(())
            }
            Input::Apply(states) => {
                let me = self.foca.identity().name.clone();
                let others = states.into_iter().filter(|m| m.id().name != me);
                self.foca.apply_many(others, false, &mut self.runtime)
            }
            Input::ForceLeave(name, prune, done) => {
                let changed = self.table().force_leave(&name, prune);
                let _ = done.send(changed);
                if changed {
                    self.version.send_modify(|v| *v += 1);
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "gossip request");
        }
    }

    fn add_broadcast(&mut self, item: &Item) -> Result<(), GossipError> {
        let bytes = bincode::serialize(item).map_err(|_| GossipError::Stopped)?;
        // Room for foca's header and this member's identity (a few hundred bytes) in the same
        // datagram; a user event's 512-byte payload (Consul's limit) fits.
        let limit = MAX_PACKET - 400;
        if bytes.len() > limit {
            return Err(GossipError::TooLarge { what: "the item", size: bytes.len(), limit });
        }
        self.foca.add_broadcast(&bytes).map(drop).map_err(|e| {
            tracing::debug!(error = %e, "broadcast refused");
            GossipError::TooLarge { what: "the item", size: bytes.len(), limit }
        })
    }

    fn deliver(&mut self, item: Item) {
        match item {
            Item::Leave { name, bump } => {
                if self.table().leaving(&name, bump) {
                    tracing::info!(target: "agent", "serf: EventMemberLeave (intent): {name}");
                    self.version.send_modify(|v| *v += 1);
                }
            }
            Item::Event { body, .. } => {
                let _ = self.events.send(body);
            }
            Item::KeyOp { op, key, .. } => {
                if let Err(e) = self.apply_key_op(op, &key) {
                    tracing::warn!(target: "agent", "serf: keyring {op:?} failed here: {e}");
                }
            }
            Item::Resync { node, .. } => {
                if node == self.foca.identity().name {
                    self.resyncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.version.send_modify(|v| *v += 1);
                }
            }
            Item::Keys { name, seq, keys } => {
                if self.reports().record(&name, seq, keys) {
                    self.version.send_modify(|v| *v += 1);
                }
            }
        }
    }

    /// Carries out a keyring change here and reports the keys it leaves.
    fn apply_key_op(&mut self, op: KeyOp, key: &str) -> Result<(), KeyError> {
        {
            let mut keyring = self.keyring.lock().unwrap_or_else(|p| p.into_inner());
            match op {
                KeyOp::Install => keyring.install(key),
                KeyOp::Use => keyring.use_key(key),
                KeyOp::Remove => keyring.remove(key),
            }?;
        }
        tracing::info!(target: "agent", "serf: keyring {op:?} done");
        self.report_keys();
        Ok(())
    }

    /// Tells every member which keys this one has (nothing without encryption).
    pub(super) fn report_keys(&mut self) {
        self.report_due = None;
        let keys = self.keyring.lock().unwrap_or_else(|p| p.into_inner()).keys();
        if keys.is_empty() {
            return;
        }
        let name = self.foca.identity().name.clone();
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.reports().record(&name, seq, keys.clone());
        self.version.send_modify(|v| *v += 1);
        if let Err(e) = self.add_broadcast(&Item::Keys { name, seq, keys }) {
            tracing::debug!(error = %e, "reporting this member's keys");
        }
    }

    fn reports(&self) -> std::sync::MutexGuard<'_, KeyReports> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            if let Err(e) = self.foca.handle_timer(timer, &mut self.runtime) {
                tracing::debug!(error = %e, "gossip timer");
            }
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, MemberTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends what foca wants sent, schedules its timers and applies its notifications.
    async fn flush(&mut self) {
        while let Some((to, data)) = self.runtime.to_send() {
            let data = self.keyring.lock().unwrap_or_else(|p| p.into_inner()).seal(&data);
            if let Err(e) = self.socket.send_to(&data, to.addr).await {
                tracing::debug!(to = %to.addr, error = %e, "gossip send");
            }
        }
        let now = Instant::now();
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.timer_seq += 1;
            self.timers.insert((now + after, self.timer_seq), timer);
        }
        let mut changed = false;
        while let Some(notification) = self.runtime.to_notify() {
            changed |= self.note(notification);
        }
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    fn note(&mut self, notification: OwnedNotification<Peer>) -> bool {
        match notification {
            OwnedNotification::MemberUp(peer) => {
                let name = peer.name.clone();
                let changed = self.table().up(peer);
                if changed {
                    tracing::info!(target: "agent", "serf: EventMemberJoin: {name}");
                    // The newcomer has not heard anyone's keys: report again soon (once for
                    // a burst of joins).
                    if self.report_due.is_none() {
                        self.report_due = Some(Instant::now() + REPORT_AFTER_JOIN);
                    }
                }
                changed
            }
            OwnedNotification::MemberDown(peer) => {
                let changed = self.table().down(&peer);
                if changed {
                    let status = self.table().get(&peer.name).map(|m| m.status);
                    match status {
                        Some(Status::Left) => {
                            tracing::info!(target: "agent", "serf: EventMemberLeave: {}", peer.name)
                        }
                        _ => tracing::info!(target: "agent", "serf: EventMemberFailed: {}", peer.name),
                    }
                }
                changed
            }
            OwnedNotification::Rename(_, new) => self.table().up(new),
            OwnedNotification::Rejoin(me) => {
                tracing::info!(target: "agent", "serf: this agent was declared down; rejoined");
                self.table().up(me)
            }
            OwnedNotification::Defunct => {
                tracing::warn!(target: "agent", "serf: this agent was declared down");
                false
            }
            other => {
                tracing::debug!(notification = ?other, "gossip");
                false
            }
        }
    }
}
