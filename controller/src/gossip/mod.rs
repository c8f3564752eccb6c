//! Membership by gossip (SWIM, through foca) on the LAN gossip port: who is in the cluster, who
//! failed and who left, which servers there are, and user events spread to every agent.
//!
//! One task owns foca: it reads the UDP socket, fires foca's timers in order, takes requests
//! (join, leave, broadcast) and turns foca's notifications into the member table.

mod codec;
mod identity;
mod members;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{AccumulatingRuntime, Foca, OwnedNotification, Timer};
use rand_small::SeedableRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub use self::codec::Item;
use self::codec::{BincodeCodec, Items};
pub use self::identity::Peer;
use self::members::MemberTable;
pub use self::members::{MemberState, Status};

#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    #[error("Failed to start the gossip layer: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the gossip layer has stopped")]
    Stopped,
    #[error("{what} is too large to gossip ({size} bytes; the limit is {limit})")]
    TooLarge { what: &'static str, size: usize, limit: usize },
}

/// How fast failures are found.
#[derive(Debug, Clone, Copy)]
pub struct GossipTiming {
    /// Each member probes one other member this often.
    pub probe_period: Duration,
    /// A probe unanswered this long is retried through other members.
    pub probe_rtt: Duration,
    /// A suspected member not heard from this long is declared failed.
    pub suspect_for: Duration,
    /// Members declared down are greeted this often, so that partitions heal.
    pub greet_down_every: Duration,
}

impl Default for GossipTiming {
    fn default() -> Self {
        GossipTiming {
            probe_period: Duration::from_secs(1),
            probe_rtt: Duration::from_millis(500),
            suspect_for: Duration::from_secs(3),
            greet_down_every: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GossipConfig {
    pub name: String,
    pub bind: SocketAddr,
    pub advertise: SocketAddr,
    pub tags: BTreeMap<String, String>,
    pub timing: GossipTiming,
}

/// The largest datagram census sends (below a 1500-byte MTU with IP and UDP headers).
const MAX_PACKET: usize = 1400;
/// How long a leaving member keeps gossiping so that its word reaches the others.
const LEAVE_PROPAGATION: Duration = Duration::from_millis(1500);

enum Input {
    Announce(SocketAddr),
    Broadcast(Item, oneshot::Sender<Result<(), GossipError>>),
    Leave(oneshot::Sender<()>),
    ForceLeave(String, bool, oneshot::Sender<bool>),
}

/// A running gossip member.
pub struct Gossip {
    name: String,
    advertise: SocketAddr,
    input: mpsc::Sender<Input>,
    table: Arc<Mutex<MemberTable>>,
    version: watch::Receiver<u64>,
    events: tokio::sync::broadcast::Sender<Vec<u8>>,
}

impl Gossip {
    pub async fn start(config: GossipConfig) -> Result<Arc<Gossip>, GossipError> {
        let socket = UdpSocket::bind(config.bind)
            .await
            .map_err(|source| GossipError::Bind { addr: config.bind, source })?;
        let me = Peer {
            name: config.name.clone(),
            addr: config.advertise,
            bump: identity::initial_bump(),
            tags: config.tags.clone(),
        };
        let table = Arc::new(Mutex::new(MemberTable::new(me.clone())));
        let (version_tx, version) = watch::channel(0);
        let (input, input_rx) = mpsc::channel(64);
        let (items_tx, items_rx) = mpsc::unbounded_channel();
        let (events, _) = tokio::sync::broadcast::channel(256);
        let mut foca_config = foca::Config::new_lan(NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN));
        let t = config.timing;
        foca_config.probe_period = t.probe_period;
        foca_config.probe_rtt = t.probe_rtt;
        foca_config.suspect_to_down_after = t.suspect_for;
        foca_config.max_packet_size = NonZeroUsize::new(MAX_PACKET).unwrap_or(NonZeroUsize::MIN);
        foca_config.periodic_announce_to_down_members = Some(foca::PeriodicParams {
            frequency: t.greet_down_every,
            num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
        });
        let seed = rand::random::<u64>();
        let foca = Foca::with_custom_broadcast(
            me,
            foca_config,
            rand_small::rngs::SmallRng::seed_from_u64(seed),
            BincodeCodec,
            Items::new(items_tx),
        );
        let driver = Driver {
            foca,
            socket,
            runtime: AccumulatingRuntime::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            table: table.clone(),
            version: version_tx,
            events: events.clone(),
            leaving: None,
        };
        tokio::spawn(driver.run(input_rx, items_rx));
        Ok(Arc::new(Gossip { name: config.name, advertise: config.advertise, input, table, version, events }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn advertise(&self) -> SocketAddr {
        self.advertise
    }

    /// Every member heard of, this one included.
    pub fn members(&self) -> Vec<MemberState> {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).all().cloned().collect()
    }

    /// Servers that are alive now.
    pub fn alive_servers(&self) -> Vec<Peer> {
        self.members()
            .into_iter()
            .filter(|m| m.status == Status::Alive && m.peer.is_server())
            .map(|m| m.peer)
            .collect()
    }

    /// Wakes on the member table's next change. (A clone of a receiver that never looked would
    /// report every change since the start as new, at once, on every call.)
    pub fn changes(&self) -> watch::Receiver<u64> {
        let mut changes = self.version.clone();
        changes.borrow_and_update();
        changes
    }

    /// Greets the members at these gossip addresses.
    pub async fn join(&self, addrs: &[SocketAddr]) -> Result<(), GossipError> {
        for addr in addrs {
            self.input.send(Input::Announce(*addr)).await.map_err(|_| GossipError::Stopped)?;
        }
        Ok(())
    }

    /// Spreads an item to every member (and delivers it here too).
    pub async fn broadcast(&self, item: Item) -> Result<(), GossipError> {
        let (tx, rx) = oneshot::channel();
        self.input.send(Input::Broadcast(item, tx)).await.map_err(|_| GossipError::Stopped)?;
        rx.await.map_err(|_| GossipError::Stopped)?
    }

    /// User event bodies as they arrive, each once.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<Vec<u8>> {
        self.events.subscribe()
    }

    /// Says goodbye: the others mark this member left, not failed. Returns once gossip stopped.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.input.send(Input::Leave(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// `force-leave`: marks a failed member left here (and with `prune`, forgets it).
    pub async fn force_leave(&self, name: &str, prune: bool) -> Result<bool, GossipError> {
        let (tx, rx) = oneshot::channel();
        self.input
            .send(Input::ForceLeave(name.to_string(), prune, tx))
            .await
            .map_err(|_| GossipError::Stopped)?;
        rx.await.map_err(|_| GossipError::Stopped)
    }

    /// Forgets members down since before `cutoff`; returns their names.
    pub fn reap(&self, cutoff: std::time::Instant) -> Vec<String> {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).reap(cutoff)
    }
}

type Engine = Foca<Peer, BincodeCodec, rand_small::rngs::SmallRng, Items>;

struct Driver {
    foca: Engine,
    socket: UdpSocket,
    runtime: AccumulatingRuntime<Peer>,
    /// foca's timers by deadline, in the order they were asked for.
    timers: BTreeMap<(Instant, u64), Timer<Peer>>,
    timer_seq: u64,
    table: Arc<Mutex<MemberTable>>,
    version: watch::Sender<u64>,
    events: tokio::sync::broadcast::Sender<Vec<u8>>,
    leaving: Option<(Instant, oneshot::Sender<()>)>,
}

impl Driver {
    async fn run(mut self, mut input: mpsc::Receiver<Input>, mut items: mpsc::UnboundedReceiver<Item>) {
        let mut buf = vec![0u8; 65_536];
        let far = || Instant::now() + Duration::from_secs(3600);
        loop {
            let next_timer = self.timers.keys().next().map_or_else(far, |(at, _)| *at);
            let leave_at = self.leaving.as_ref().map_or_else(far, |(at, _)| *at);
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => {
                        if let Err(e) = self.foca.handle_data(&buf[..n], &mut self.runtime) {
                            tracing::debug!(%from, error = %e, "gossip packet dropped");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "gossip socket"),
                },
                request = input.recv() => match request {
                    Some(request) => self.handle(request),
                    None => return,
                },
                Some(item) = items.recv() => self.deliver(item),
                _ = tokio::time::sleep_until(next_timer) => self.fire_timers(),
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
        }
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

/// Consul's tags for a member: `role` (`consul` on servers, `node` on clients), `dc`, `id`
/// (the node ID), `build`, the protocol versions, and on servers the server `port` and census's
/// `http` address for forwarding.
pub fn member_tags(
    server: Option<(u16, usize)>,
    dc: &str,
    node_id: &str,
    http: &str,
) -> BTreeMap<String, String> {
    let build = format!("{}:{}", crate::version::CONSUL_API_VERSION, crate::version::REVISION);
    let mut tags: Vec<(&str, String)> = vec![
        ("dc", dc.to_string()),
        ("id", node_id.to_string()),
        ("build", build),
        ("vsn", "2".into()),
        ("vsn_min", "2".into()),
        ("vsn_max", "3".into()),
        ("segment", String::new()),
        ("http", http.to_string()),
    ];
    match server {
        Some((port, expect)) => {
            tags.extend([
                ("role", "consul".into()),
                ("port", port.to_string()),
                ("raft_vsn", "3".into()),
                ("wan_join_port", "8302".into()),
                ("acls", "0".into()),
                ("ft_fs", "1".into()),
                ("ft_si", "1".into()),
            ]);
            if expect > 0 {
                tags.push(("expect", expect.to_string()));
            }
        }
        None => tags.push(("role", "node".into())),
    }
    tags.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
