//! The Consul-style CLI: `census members`, `census kv …`, `census catalog …`, `census services …`,
//! `census operator raft …`, `census join`, `census leave`, `census force-leave`, `census event`,
//! `census keygen`, `census keyring`.

mod acl;
mod commands;
mod gossip;
mod kv;
mod kv_transfer;
mod lock;
mod maint;
mod progress;
mod semaphore;
mod snapshot;
mod table;
mod tls;
mod watch;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::agent::config::AgentArgs;

#[derive(Debug, Parser)]
#[command(name = "census", version, about = "A Consul-compatible service catalog, replicated with Raft")]
pub struct Cli {
    #[command(subcommand)]
    pub command: TopCommand,
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// The agent's HTTP address (also CENSUS_HTTP_ADDR or CONSUL_HTTP_ADDR).
    #[arg(long, global = true, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// ACL token (also CENSUS_HTTP_TOKEN or CONSUL_HTTP_TOKEN).
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// A file holding the ACL token (also CONSUL_HTTP_TOKEN_FILE).
    #[arg(long = "token-file", global = true, value_name = "FILE")]
    pub token_file: Option<String>,
    /// The CA to check the agent's HTTPS certificate with (also CONSUL_CACERT).
    #[arg(long = "ca-file", global = true, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// A client certificate for an agent with verify_incoming (also CONSUL_CLIENT_CERT).
    #[arg(long = "client-cert", global = true, value_name = "FILE")]
    pub client_cert: Option<std::path::PathBuf>,
    /// Its key (also CONSUL_CLIENT_KEY).
    #[arg(long = "client-key", global = true, value_name = "FILE")]
    pub client_key: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

// Parsed once per process; its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Run a census agent (a server with -server, else a client agent).
    Agent(AgentArgs),
    /// List the members of the cluster (servers and client agents) as gossip sees them.
    Members {
        #[command(flatten)]
        http: HttpArgs,
        /// Show every tag of each member.
        #[arg(long)]
        detailed: bool,
    },
    /// Mark a failed member left on every agent and remove it from the catalog.
    ForceLeave {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        args: gossip::ForceLeaveArgs,
    },
    /// Fire a user event: every agent (or those the filters pick) takes it, by gossip.
    Event {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        args: gossip::EventArgs,
    },
    /// Manage ACLs: bootstrap, tokens, policies, roles, auth methods, binding rules.
    Acl {
        #[command(flatten)]
        http: HttpArgs,
        #[command(subcommand)]
        command: acl::AclCommand,
    },
    /// Make a CA and agent certificates for TLS.
    Tls {
        #[command(subcommand)]
        command: tls::TlsCommand,
    },
    /// Print a new gossip encryption key (for -encrypt).
    Keygen,
    /// List, install, use or remove gossip encryption keys on every member.
    Keyring {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        args: gossip::KeyringArgs,
    },
    /// Ask the agent to join other agents.
    Join {
        #[command(flatten)]
        http: HttpArgs,
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Make the agent leave the cluster gracefully and stop.
    Leave {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Make the agent read its service definition files again (as SIGHUP does).
    Reload {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Read and write the key/value store.
    Kv {
        #[command(flatten)]
        http: HttpArgs,
        #[command(subcommand)]
        command: kv::KvCommand,
    },
    /// Read the catalog.
    Catalog {
        #[command(flatten)]
        http: HttpArgs,
        #[command(subcommand)]
        command: commands::CatalogCommand,
    },
    /// Register and deregister services from definition files.
    Services {
        #[command(flatten)]
        http: HttpArgs,
        #[command(subcommand)]
        command: commands::ServicesCommand,
    },
    /// Run a command while holding a lock (or, with -n, a semaphore slot) under a KV prefix.
    Lock {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        args: lock::LockArgs,
    },
    /// Put the node or a service into maintenance mode, take it out, or list what is in it.
    Maint {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        args: maint::MaintArgs,
    },
    /// Run a handler (or print JSON) whenever a view of the catalog changes.
    Watch {
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        args: watch::WatchArgs,
    },
    /// Save, restore and inspect snapshots of the whole catalog and KV store.
    Snapshot {
        #[command(flatten)]
        http: HttpArgs,
        #[command(subcommand)]
        command: snapshot::SnapshotCommand,
    },
    /// Print the Kubernetes CustomResourceDefinitions (Service, KVEntry) as YAML.
    Crd,
    /// Cluster operations.
    Operator {
        #[command(flatten)]
        http: HttpArgs,
        #[command(subcommand)]
        command: commands::OperatorCommand,
    },
}

/// What a CLI command failed on.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] census_client::ClientError),
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    File { path: String, source: std::io::Error },
}

impl HttpArgs {
    pub fn client(&self) -> Result<census_client::Client, CliError> {
        let mut tls = census_client::TlsOptions::from_env();
        tls.ca_file = self.ca_file.clone().or(tls.ca_file);
        tls.cert_file = self.client_cert.clone().or(tls.cert_file);
        tls.key_file = self.client_key.clone().or(tls.key_file);
        let client = match &self.http_addr {
            Some(addr) => census_client::Client::with_tls(addr, &tls)?,
            None if tls != census_client::TlsOptions::from_env() => {
                let addr = std::env::var("CENSUS_HTTP_ADDR")
                    .or_else(|_| std::env::var("CONSUL_HTTP_ADDR"))
                    .unwrap_or_else(|_| "127.0.0.1:8500".to_string());
                census_client::Client::with_tls(&addr, &tls)?
            }
            None => census_client::Client::from_env()?,
        };
        Ok(client.with_token(self.token()?))
    }

    /// `-token`, `-token-file`, then `CENSUS_HTTP_TOKEN`, `CONSUL_HTTP_TOKEN`,
    /// `CONSUL_HTTP_TOKEN_FILE`, as Consul's CLI looks for it.
    fn token(&self) -> Result<Option<String>, CliError> {
        let from_file = |path: String| {
            std::fs::read_to_string(&path)
                .map(|t| t.trim().to_string())
                .map_err(|source| CliError::File { path, source })
        };
        if let Some(token) = &self.token {
            return Ok(Some(token.clone()));
        }
        if let Some(path) = &self.token_file {
            return from_file(path.clone()).map(Some);
        }
        for var in ["CENSUS_HTTP_TOKEN", "CONSUL_HTTP_TOKEN"] {
            if let Ok(token) = std::env::var(var)
                && !token.is_empty()
            {
                return Ok(Some(token));
            }
        }
        match std::env::var("CONSUL_HTTP_TOKEN_FILE") {
            Ok(path) if !path.is_empty() => from_file(path).map(Some),
            _ => Ok(None),
        }
    }
}

/// Runs a client command; returns the process exit code.
pub async fn run_client(command: TopCommand) -> Result<i32, CliError> {
    match command {
        TopCommand::Agent(_) => Err(CliError::Usage("agent is not a client command".into())),
        TopCommand::Crd => match census_operator::crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                Ok(0)
            }
            Err(e) => Err(CliError::Usage(format!("cannot write the CRDs: {e}"))),
        },
        TopCommand::Members { http, detailed } => commands::members(&http, detailed).await,
        TopCommand::Join { http, addresses } => commands::join(&http, &addresses).await,
        TopCommand::Leave { http } => commands::leave(&http).await,
        TopCommand::ForceLeave { http, args } => gossip::force_leave(&http, args).await,
        TopCommand::Event { http, args } => gossip::event(&http, args).await,
        TopCommand::Keygen => gossip::keygen(),
        TopCommand::Tls { command } => tls::run(command),
        TopCommand::Acl { http, command } => acl::run(&http, command).await,
        TopCommand::Keyring { http, args } => gossip::keyring(&http, args).await,
        TopCommand::Reload { http } => commands::reload(&http).await,
        TopCommand::Kv { http, command } => kv::run(&http, command).await,
        TopCommand::Catalog { http, command } => commands::catalog(&http, command).await,
        TopCommand::Services { http, command } => commands::services(&http, command).await,
        TopCommand::Operator { http, command } => commands::operator(&http, command).await,
        TopCommand::Lock { http, args } => lock::run(&http, args).await,
        TopCommand::Maint { http, args } => maint::run(&http, args).await,
        TopCommand::Watch { http, args } => watch::run(&http, args).await,
        TopCommand::Snapshot { http, command } => snapshot::run(&http, command).await,
    }
}

/// As Consul's image entrypoint does: a command line that starts with a flag
/// (`census -server -bootstrap`) is an agent's (`census agent -server -bootstrap`).
pub fn implicit_agent(mut args: Vec<String>) -> Vec<String> {
    let starts_with_flag = args
        .get(1)
        .is_some_and(|a| a.starts_with('-') && !matches!(a.as_str(), "-h" | "--help" | "-V" | "--version"));
    if starts_with_flag {
        args.insert(1, "agent".to_string());
    }
    args
}

#[cfg(test)]
mod implicit_agent_tests {
    use super::implicit_agent;

    #[test]
    fn a_leading_flag_means_agent() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            implicit_agent(args(&["census", "-server", "-bootstrap"])),
            args(&["census", "agent", "-server", "-bootstrap"])
        );
        assert_eq!(implicit_agent(args(&["census", "members"])), args(&["census", "members"]));
        assert_eq!(implicit_agent(args(&["census", "--help"])), args(&["census", "--help"]));
    }
}
