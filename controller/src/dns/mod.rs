//! The DNS interface on :8600: Consul's names (`web.service.consul`, `_web._tcp.service.consul`,
//! `n1.node.consul`, PTR), answered from the local catalog on a server (stale reads, as Consul
//! does) and from a server's answer on a client agent (`remote`).
//!
//! Parsing (`name`), lookup (`lookup`) and record building (`records`) are pure functions;
//! `handler` ties them into one request → response step; `server` owns the sockets.

mod acl_filter;
pub mod config;
pub mod handler;
pub mod lookup;
pub mod name;
pub mod records;
mod recursor;
pub mod remote;
pub mod server;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use config::{DnsConfig, DnsConfigError, DnsConfigFile};
pub use handler::{Outcome, Pending, Responder, Transport};
pub use server::DnsListeners;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen for DNS on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot serve DNS: {source}")]
    Serve { source: std::io::Error },
}
