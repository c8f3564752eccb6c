//! census-controller: the catalog server, its HTTP API, the Raft adapter and the CLI.

pub mod catalog;
pub mod raft;
