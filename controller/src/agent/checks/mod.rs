//! The check runner: runs the checks registered with this agent (HTTP, TCP, UDP, gRPC, H2PING,
//! script, Docker, alias, OS service; TTLs by their deadline) and writes their status changes,
//! damped by the flap guard.

mod flap;
mod probe;
mod runner;

pub use runner::*;
