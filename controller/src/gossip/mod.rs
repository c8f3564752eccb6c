//! Membership by gossip (SWIM, through foca) on the LAN gossip port: who is in the cluster, who
//! failed and who left, which servers there are, and user events spread to every agent.
//!
//! One task owns foca (`driver`); `Gossip` is the handle the agent holds. Gossip encryption is
//! `keyring`; who has which key, `key_reports`.

mod codec;
mod driver;
mod identity;
mod key_reports;
pub mod keyring;
mod members;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foca::{AccumulatingRuntime, Foca};
use rand_small::SeedableRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use self::codec::{BincodeCodec, Items};
pub use self::codec::{Item, KeyOp};
use self::driver::Driver;
pub use self::identity::Peer;
use self::key_reports::KeyReports;
pub use self::key_reports::KeyringView;
use self::keyring::{KeyError, Keyring, Rejection};
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
    #[error("{addr} turned this agent away: {}", reason.as_sender())]
    Rejected { addr: SocketAddr, reason: Rejection },
    #[error(transparent)]
    Keyring(KeyError),
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

#[derive(Debug)]
pub struct GossipConfig {
    pub name: String,
    pub bind: SocketAddr,
    pub advertise: SocketAddr,
    pub tags: BTreeMap<String, String>,
    pub timing: GossipTiming,
    pub keyring: Keyring,
}

/// The largest datagram census sends (below a 1500-byte MTU with IP and UDP headers).
const MAX_PACKET: usize = 1400;
/// A join waits this long to hear that its greeting was turned away (a key mismatch).
const JOIN_ANSWER: Duration = Duration::from_secs(2);
/// A member that keeps sending what cannot be opened is told (and logged) at most this often.
const REJECT_EVERY: Duration = Duration::from_secs(5);
/// After members join, each member reports its keys once this much later.
const REPORT_AFTER_JOIN: Duration = Duration::from_secs(2);
/// A keyring change waits this long for every alive member to report it done.
const KEY_OP_WAIT: Duration = Duration::from_secs(10);
/// How long a leaving member keeps gossiping so that its word reaches the others.
const LEAVE_PROPAGATION: Duration = Duration::from_millis(1500);

enum Input {
    Announce(SocketAddr),
    Broadcast(Item, oneshot::Sender<Result<(), GossipError>>),
    Leave(oneshot::Sender<()>),
    ForceLeave(String, bool, oneshot::Sender<bool>),
    KeyOp(KeyOp, String, oneshot::Sender<Result<(), KeyError>>),
    /// Everything this member knows of the others (for a joining agent's full sync).
    States(oneshot::Sender<Vec<foca::Member<Peer>>>),
    /// Another member's knowledge, taken in.
    Apply(Vec<foca::Member<Peer>>),
}

/// A running gossip member.
pub struct Gossip {
    name: String,
    advertise: SocketAddr,
    input: mpsc::Sender<Input>,
    table: Arc<Mutex<MemberTable>>,
    version: watch::Receiver<u64>,
    events: tokio::sync::broadcast::Sender<Vec<u8>>,
    keyring: Arc<Mutex<Keyring>>,
    /// Members that turned this one away, and why.
    rejections: Arc<Mutex<HashMap<SocketAddr, Rejection>>>,
    reports: Arc<Mutex<KeyReports>>,
    resyncs: Arc<std::sync::atomic::AtomicU64>,
}

/// How a keyring change went: the alive members, and those that did not report it done in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOpOutcome {
    pub num_nodes: usize,
    pub not_done: Vec<String>,
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
        foca_config.max_packet_size =
            NonZeroUsize::new(MAX_PACKET - keyring::OVERHEAD).unwrap_or(NonZeroUsize::MIN);
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
        let keyring = Arc::new(Mutex::new(config.keyring));
        let rejections = Arc::new(Mutex::new(HashMap::new()));
        let reports = Arc::new(Mutex::new(KeyReports::default()));
        let resyncs = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut driver = Driver {
            resyncs: resyncs.clone(),
            reports: reports.clone(),
            report_due: None,
            foca,
            keyring: keyring.clone(),
            rejections: rejections.clone(),
            refused: HashMap::new(),
            socket,
            runtime: AccumulatingRuntime::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            table: table.clone(),
            version: version_tx,
            events: events.clone(),
            leaving: None,
        };
        driver.report_keys();
        tokio::spawn(driver.run(input_rx, items_rx));
        Ok(Arc::new(Gossip {
            name: config.name,
            advertise: config.advertise,
            input,
            table,
            version,
            events,
            keyring,
            rejections,
            reports,
            resyncs,
        }))
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

    /// Greets the members at these gossip addresses. Fails when one turns this agent away (its
    /// gossip keys differ); a greeting nobody answers is not an error (the address may be one
    /// the member does not advertise), and `retry_join` greets again.
    pub async fn join(&self, addrs: &[SocketAddr]) -> Result<(), GossipError> {
        let mut changes = self.changes();
        for addr in addrs {
            self.rejections().remove(addr);
            self.input.send(Input::Announce(*addr)).await.map_err(|_| GossipError::Stopped)?;
        }
        let deadline = Instant::now() + JOIN_ANSWER;
        loop {
            for addr in addrs {
                if let Some(reason) = self.rejections().get(addr) {
                    return Err(GossipError::Rejected { addr: *addr, reason: *reason });
                }
            }
            let members = self.members();
            let answered =
                |addr: &SocketAddr| members.iter().any(|m| m.peer.addr == *addr && m.status == Status::Alive);
            if addrs.iter().all(answered) {
                return Ok(());
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
            }
        }
    }

    /// Every other member as this one knows it (identity, incarnation, state): what a joining
    /// agent takes in at once, as serf's push-pull sync on join, instead of meeting members one
    /// probe at a time.
    pub async fn member_states(&self) -> Result<Vec<foca::Member<Peer>>, GossipError> {
        let (tx, rx) = oneshot::channel();
        self.input.send(Input::States(tx)).await.map_err(|_| GossipError::Stopped)?;
        rx.await.map_err(|_| GossipError::Stopped)
    }

    /// Takes in another member's knowledge (`member_states`); newer news wins as in gossip.
    pub async fn apply_states(&self, states: Vec<foca::Member<Peer>>) -> Result<(), GossipError> {
        self.input.send(Input::Apply(states)).await.map_err(|_| GossipError::Stopped)
    }

    fn rejections(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Rejection>> {
        self.rejections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many times the leader asked this agent to sync its state now (`Item::Resync`).
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This member's gossip encryption keys.
    pub fn keyring(&self) -> std::sync::MutexGuard<'_, Keyring> {
        self.keyring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Who has which key among the alive members (servers only: the WAN pool's view).
    pub fn keyring_view(&self, only_servers: bool) -> KeyringView {
        let members = self.members();
        self.reports.lock().unwrap_or_else(|p| p.into_inner()).view(&members, only_servers)
    }

    /// Installs, uses or removes a key here and on every member, and waits until every alive
    /// member reports it done. Fails at once when this member cannot do it (no encryption, the
    /// primary key removed, a key not installed used).
    pub async fn change_keyring(&self, op: KeyOp, key: &str) -> Result<KeyOpOutcome, GossipError> {
        let (tx, rx) = oneshot::channel();
        self.input.send(Input::KeyOp(op, key.to_string(), tx)).await.map_err(|_| GossipError::Stopped)?;
        rx.await.map_err(|_| GossipError::Stopped)?.map_err(GossipError::Keyring)?;
        // Reports carry keys as the keyring writes them.
        let key = keyring::normalized(key).map_err(GossipError::Keyring)?;
        let deadline = Instant::now() + KEY_OP_WAIT;
        let mut changes = self.changes();
        loop {
            let members = self.members();
            let not_done = self.reports.lock().unwrap_or_else(|p| p.into_inner()).pending(&members, op, &key);
            let num_nodes = members.iter().filter(|m| m.status == Status::Alive).count();
            if not_done.is_empty() || Instant::now() >= deadline {
                return Ok(KeyOpOutcome { num_nodes, not_done });
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
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
