//! DNS on a client agent: it holds no catalog, so it asks a server for the facts behind a
//! question and builds the records itself, with its own `dns_config` (as Consul's client agents
//! answer DNS by RPC to the servers, stale reads allowed up to `max_stale`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::lookup::{Found, lookup};
use super::name::Question;
use crate::catalog::CatalogState;

/// What a client agent asks a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactsRequest {
    pub question: Question,
    /// The asking agent's datacenter.
    pub datacenter: String,
    pub only_passing: bool,
    /// The server may answer from its own state if it heard from the leader at most this many
    /// milliseconds ago; `None`: only the leader's state will do (`allow_stale = false`).
    pub max_stale_ms: Option<u64>,
}

impl FactsRequest {
    pub fn new(question: Question, config: &super::DnsConfig) -> FactsRequest {
        let max_stale_ms = config.allow_stale.then(|| duration_ms(config.max_stale));
        FactsRequest {
            question,
            datacenter: config.datacenter.clone(),
            only_passing: config.only_passing,
            max_stale_ms,
        }
    }

    /// Answers from `state` (on the server, once the staleness bound holds).
    pub fn answer(&self, state: &CatalogState) -> Facts {
        Facts {
            found: lookup(state, &self.question, &self.datacenter, self.only_passing),
            index: state.last_index(),
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A server's answer: the facts and the catalog index they were read at (the SOA serial).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub found: Found,
    pub index: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("no server answered the DNS lookup: {0}")]
pub struct FactsError(pub String);

pub type FactsFuture<'a> = Pin<Box<dyn Future<Output = Result<Facts, FactsError>> + Send + 'a>>;

/// The servers a client agent's DNS asks (implemented by the client agent's server pool).
pub trait FactsSource: Send + Sync {
    fn facts(&self, request: FactsRequest) -> FactsFuture<'_>;
}
