//! The Raft adapter around the catalog: log store, state machine, network, membership.

// openraft's trait signatures fix its (large) error type; boxing it in our helpers gains nothing.
#![allow(clippy::result_large_err)]

mod batch;
pub mod bootstrap;
pub mod disk_space;
mod election;
pub mod log_salvage;
pub mod log_store;
mod membership;
pub mod network;
pub mod node;
pub mod peer_role;
mod read_rounds;
mod reads;
mod recovery;
pub mod rpc_server;
mod snapshot_trigger;
pub mod state_machine;
pub mod types;
pub mod wal;

#[cfg(test)]
mod storage_suite;

pub use election::PreVoteRequest;
pub use membership::MembershipChange;
pub use node::{ClusterError, ClusterNode, RaftTiming, RemoteError};
pub use reads::ReadMode;
pub use types::{NodeId, ServerNode};
