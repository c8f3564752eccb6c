//! The flags of `census agent`, spelled as Consul spells them.

use std::path::PathBuf;

use clap::Args;

/// The flags of `census agent`. Single-dash spellings (`-bootstrap-expect=3`) are accepted too.
#[derive(Debug, Clone, Default, Args)]
pub struct AgentArgs {
    /// Development mode: one in-memory server, ready at once, nothing written to disk.
    #[arg(long)]
    pub dev: bool,
    /// Run as a server (a Raft voter). Without it, a client agent: no Raft state, membership by
    /// gossip. As in Consul, servers by default do not leave the cluster on SIGINT or SIGTERM,
    /// client agents leave on both.
    #[arg(long)]
    pub server: bool,
    /// Initialize a one-server cluster at once.
    #[arg(long)]
    pub bootstrap: bool,
    /// Wait for this many servers before electing a leader.
    #[arg(long, value_name = "N")]
    pub bootstrap_expect: Option<usize>,
    /// An agent to join, retried until it answers (repeatable). HOST[:PORT]: a server's Raft port
    /// (the default, 8300) or any agent's gossip port (8301).
    #[arg(long, value_name = "ADDR")]
    pub retry_join: Vec<String>,
    /// A server to join at start (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub join: Vec<String>,
    /// Where the Raft log, snapshots and node ID live (default: $CENSUS_DATA_DIR if set).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// This node's name (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Address the server port listens on (default 0.0.0.0).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Address other servers reach this one at.
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<String>,
    /// Address the HTTP and DNS interfaces listen on (default 127.0.0.1).
    #[arg(long, value_name = "ADDR")]
    pub client: Option<String>,
    #[arg(long, value_name = "DC")]
    pub datacenter: Option<String>,
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<u16>,
    /// Raft between servers.
    #[arg(long, value_name = "PORT")]
    pub server_port: Option<u16>,
    /// LAN gossip (UDP) among every agent, client or server (default 8301).
    #[arg(long, value_name = "PORT")]
    pub serf_lan_port: Option<u16>,
    /// Gossip encryption key: base64 of 16 or 32 random bytes (`census keygen`). Kept in
    /// DATA-DIR/serf/local.keyring afterwards, which wins over this flag on later starts.
    #[arg(long, value_name = "KEY")]
    pub encrypt: Option<String>,
    /// The DNS interface (UDP and TCP); -1 turns it off.
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub dns_port: Option<i32>,
    /// The DNS domain census answers for (default `consul.`).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// A second domain answered like the first.
    #[arg(long, value_name = "DOMAIN")]
    pub alt_domain: Option<String>,
    /// Upstream DNS server for names outside the domain (repeatable), IP[:PORT].
    #[arg(long, value_name = "ADDR")]
    pub recursor: Vec<String>,
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Also write the log to this file (appended). A path ending in `/` or naming a directory
    /// means `census.log` in it. The directory must exist, as with Consul.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Write the agent's process ID here at start; removed when the agent stops.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// A JSON agent config file (repeatable). Unknown keys are refused, as Consul refuses them.
    #[arg(long, value_name = "FILE")]
    pub config_file: Vec<PathBuf>,
    /// A directory of JSON agent config files, read in name order (repeatable).
    #[arg(long, value_name = "DIR")]
    pub config_dir: Vec<PathBuf>,
    /// Accept script checks (`Args`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_script_checks: Option<bool>,
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub enable_local_script_checks: Option<bool>,
    /// Serve the web UI (on by default with -dev).
    #[arg(long)]
    pub ui: bool,
    /// Serve the UI from this directory instead of the copy in the binary (implies -ui).
    #[arg(long, value_name = "DIR")]
    pub ui_dir: Option<PathBuf>,
    /// The URL path of the web UI; `ui`, `/ui` and `/ui/` all mean the default, `/ui/`.
    #[arg(long, value_name = "PATH")]
    pub ui_content_path: Option<String>,
    /// Raft timing scale, 1 to 10 (Consul's performance.raft_multiplier; 1 = 100 ms heartbeats,
    /// 0.3–0.6 s elections; default 1).
    #[arg(long, value_name = "N")]
    pub raft_multiplier: Option<u64>,
    /// Free space (bytes) a server keeps in reserve on its data dir's filesystem: while it has less,
    /// as leader it refuses writes with 503 instead of letting the Raft log fill the disk
    /// (default 67108864, 64 MiB; 0 turns the check off). census' own; Consul has none.
    #[arg(long, value_name = "BYTES")]
    pub raft_min_free_bytes: Option<u64>,
    /// The shortest Raft election timeout, 30ms to 10s (census' own; default 300ms times
    /// -raft-multiplier): heartbeats every third of it, elections between it and twice it. Shorter
    /// means a dead leader is replaced sooner, and a slow network or disk is taken for one sooner.
    #[arg(long, value_name = "DURATION", value_parser = census_client::parse_duration)]
    pub raft_election_timeout: Option<std::time::Duration>,
    /// How long an agent may stay silent before the leader turns the checks of its node critical.
    #[arg(long, value_name = "DURATION", value_parser = census_client::parse_duration)]
    pub owner_lease_ttl: Option<std::time::Duration>,
    /// How long a silent agent's node stays in the catalog before the leader removes it.
    #[arg(long, value_name = "DURATION", value_parser = census_client::parse_duration)]
    pub reconnect_timeout: Option<std::time::Duration>,
    /// How often a client agent syncs its services and checks to the catalog in full, repairing
    /// what was changed behind its back (Consul: about a minute; changes sync at once).
    #[arg(long, value_name = "DURATION", value_parser = census_client::parse_duration)]
    pub anti_entropy_interval: Option<std::time::Duration>,
    /// `kubernetes`: also run the operator (Service and KVEntry reconcilers) while leading.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// With `-platform kubernetes`: reconcile resources of this namespace only (default: all).
    #[arg(long, value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// With `-platform kubernetes`: whether KVEntries may take values from Secrets (default true;
    /// false when the service account may not read them).
    #[arg(long, value_name = "BOOL")]
    pub read_secrets: Option<bool>,
}
