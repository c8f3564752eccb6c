//! Which Consul census answers as, and census's own version.
//!
//! Clients read `Config.Version` of `/v1/agent/self` to decide which Consul features they may use;
//! census implements the HTTP API of this Consul release and says so there. Its own version is
//! in `Meta["census-version"]`, `Stats.build.version_metadata` and `census version`.

/// The Consul release whose HTTP API census answers.
pub const CONSUL_API_VERSION: &str = "1.22.0";
/// census's own version.
pub const CENSUS_VERSION: &str = env!("CARGO_PKG_VERSION");
/// What census puts where Consul puts its short git revision.
pub const REVISION: &str = concat!("census-", env!("CARGO_PKG_VERSION"));
