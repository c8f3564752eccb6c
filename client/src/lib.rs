//! census-client: Consul's wire types and an async HTTP client with blocking queries.
//!
//! Used by the census CLI, the sidecars and the end-to-end tests; any Consul agent serves it too.

pub mod cli_args;
pub mod client;
pub mod duration;
pub mod grpc_health;
pub mod overview;
pub mod session;
pub mod snapshot;
pub mod types;

pub use client::{Client, ClientError, Consistency, KvWriteOptions, QueryMeta, QueryOptions, TlsOptions};
pub use duration::{GoDuration, format_duration, parse_duration};
