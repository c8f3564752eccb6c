//! What only the Raft leader does, each on its own timer, restarted when leadership is won anew
//! (`leadership`): autopilot, gossip members into the catalog, owner leases, the critical-service
//! reaper (also run by client agents for their own services), session TTLs, the ACL system's
//! built-in records.

pub mod acl_init;
pub mod autopilot;
mod leadership;
pub mod members;
pub mod owner_leases;
pub mod reaper;
pub mod session_monitor;

#[cfg(test)]
mod paused_clock_tests;
