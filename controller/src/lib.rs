//! census-controller: the catalog server (`census agent`), its HTTP API, the Raft adapter and the CLI.

pub mod acl;
pub mod agent;
pub mod catalog;
pub mod cli;
pub mod client_agent;
pub mod cluster;
pub mod dns;
pub mod gossip;
pub mod http;
pub mod raft;
pub mod tls;
pub mod version;
