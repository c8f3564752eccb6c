//! From a request's token to what it may do: the token found by its SecretID (or the agent's
//! `default` token, else `anonymous`, when the request carries none), its policies, roles,
//! identities and templated policies merged into one `Authorizer`.
//!
//! A server resolves from its own catalog and caches until an ACL record changes. A client
//! agent holds no ACL records: it asks a server for a token's grants (`/raft/acl`), keeps the
//! answer for `TOKEN_TTL` (Consul's `acl.token_ttl`), and while no server answers keeps using
//! what it had (Consul's default `down_policy`, `extend-cache`); a token it never resolved is
//! then refused.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::authorizer::Authorizer;
use super::identities::{node_rules, service_rules, template};
use super::records::{ANONYMOUS_SECRET, GLOBAL_MANAGEMENT_ID, Link, Policy, Role, Token};
use super::rules;
use super::store;
use super::{AclConfig, AgentTokens};
use crate::catalog::{Catalog, CatalogState, Table};

/// How long a client agent keeps a token's grants before asking again.
pub const TOKEN_TTL: Duration = Duration::from_secs(30);

/// Who a request is, for the ACL checks of its route.
#[derive(Debug)]
pub struct Identity {
    /// Empty for the agent recovery token and when ACLs are off.
    pub accessor_id: String,
    /// Shared with the resolver's cache: a cached token costs a reference count, not a copy of
    /// its rule tables, per request.
    pub authorizer: Arc<Authorizer>,
    /// Whether the request named a token itself (listings then say when they were filtered).
    pub named: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// The secret names no token (or an expired one).
    #[error("ACL not found")]
    NotFound,
    /// A client agent could not reach a server and had nothing cached for the token.
    #[error("ACL not found: no server answered to resolve the token")]
    Unresolved,
}

/// What a token grants, as a server tells a client agent: the rules texts of its policies, roles
/// and identities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    pub accessor_id: String,
    pub management: bool,
    pub rules: Vec<String>,
}

pub type GrantsFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Grants>, String>> + Send + 'a>>;

/// The servers a client agent asks (its server pool).
pub trait GrantsSource: Send + Sync {
    fn grants(&self, secret: String) -> GrantsFuture<'_>;
}

enum Source {
    Catalog(Arc<Catalog>),
    Servers(Arc<dyn GrantsSource>),
}

#[derive(Default)]
struct Cache {
    /// The ACL table index the entries were resolved at (servers).
    index: u64,
    by_secret: HashMap<String, (Instant, Arc<Identity>)>,
}

/// The agent's ACL system: its settings, its own tokens, and token resolution.
pub struct Acl {
    pub config: AclConfig,
    tokens: RwLock<AgentTokens>,
    /// With token persistence: the data dir, and the tokens set through the API (what the file
    /// holds).
    persisted: Option<(std::path::PathBuf, Mutex<AgentTokens>)>,
    source: Source,
    datacenter: String,
    cache: Mutex<Cache>,
    /// On a client agent: the token each local service was registered with.
    pub registrations: super::registration_tokens::RegistrationTokens,
}

impl Acl {
    /// A server's: tokens resolved from its own catalog.
    pub fn new(config: AclConfig, catalog: Arc<Catalog>, datacenter: String) -> Acl {
        Acl::with_source(config, Source::Catalog(catalog), datacenter)
    }

    /// A client agent's: tokens resolved by the servers.
    pub fn asking(config: AclConfig, servers: Arc<dyn GrantsSource>, datacenter: String) -> Acl {
        Acl::with_source(config, Source::Servers(servers), datacenter)
    }

    fn with_source(config: AclConfig, source: Source, datacenter: String) -> Acl {
        let tokens = RwLock::new(config.tokens.clone());
        Acl {
            config,
            tokens,
            persisted: None,
            source,
            datacenter,
            cache: Mutex::new(Cache::default()),
            registrations: Default::default(),
        }
    }

    /// Keeps the tokens local services were registered with in `dir`.
    pub fn keeping_registrations_in(mut self, dir: std::path::PathBuf) -> Acl {
        self.registrations = super::registration_tokens::RegistrationTokens::kept_in(dir);
        self
    }

    /// Keeps tokens set through the API in `dir` (`acl.enable_token_persistence`), and takes
    /// those kept there before over the configured ones. A file that cannot be read is logged
    /// and left out (as Consul: the configured tokens stand), and replaced by the next save.
    pub fn persisting_tokens_in(mut self, dir: std::path::PathBuf) -> Acl {
        let api_set = super::token_file::load(&dir).unwrap_or_else(|e| {
            tracing::warn!(target: "agent", error = %e, "unable to load persisted tokens");
            AgentTokens::default()
        });
        if let Ok(tokens) = self.tokens.get_mut() {
            tokens.overlay(&api_set);
        }
        self.persisted = Some((dir, Mutex::new(api_set)));
        self
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// `PUT /v1/agent/token/:kind`; false for a kind Consul does not have. With persistence,
    /// the token is on disk before this returns.
    pub fn set_agent_token(
        &self,
        kind: &str,
        secret: String,
    ) -> Result<bool, super::token_file::TokenFileError> {
        if let Some((dir, api_set)) = &self.persisted {
            let mut api_set = api_set.lock().unwrap_or_else(|p| p.into_inner());
            let mut changed = api_set.clone();
            if !changed.set(kind, secret.clone()) {
                return Ok(false);
            }
            // Kept only once on disk: a failed save leaves nothing for a later one to write.
            super::token_file::save(dir, &changed)?;
            *api_set = changed;
        }
        let Ok(mut tokens) = self.tokens.write() else { return Ok(false) };
        Ok(tokens.set(kind, secret))
    }

    /// The token this agent's own writes carry (its node, in anti-entropy): the `agent` token,
    /// else the `default` one, as Consul's agent chooses.
    pub fn agent_token(&self) -> String {
        let tokens = self.tokens.read();
        let Ok(tokens) = tokens else { return String::new() };
        if tokens.agent.is_empty() { tokens.default.clone() } else { tokens.agent.clone() }
    }

    /// The token a configuration file's services act with (`config_file_service_registration`,
    /// else none: then the default token).
    pub fn config_file_service_token(&self) -> String {
        self.tokens.read().map(|t| t.config_file_service_registration.clone()).unwrap_or_default()
    }

    /// A server's resolution of a token another agent sent with its write: empty is the
    /// anonymous token (the sending agent applied its own defaults), never this server's default.
    /// This server's `agent_recovery` token is not honoured here: it is for this agent's own
    /// endpoints only, as in Consul.
    pub fn resolve_sent(&self, secret: &str) -> Result<Arc<Identity>, AclError> {
        self.resolve_catalog(if secret.is_empty() { ANONYMOUS_SECRET } else { secret }, false)
    }

    /// The agent's `default` token: what requests without a token, and DNS, act as.
    pub fn default_token(&self) -> String {
        self.tokens.read().map(|t| t.default.clone()).unwrap_or_default()
    }

    fn everything(named: bool) -> Arc<Identity> {
        Arc::new(Identity {
            accessor_id: String::new(),
            authorizer: Arc::new(Authorizer::management()),
            named,
        })
    }

    /// The secret a request acts with, and whether it named one.
    fn effective(&self, secret: &str) -> (String, bool) {
        let named = !secret.is_empty();
        let secret = if named { secret.to_string() } else { self.default_token() };
        (if secret.is_empty() { ANONYMOUS_SECRET.to_string() } else { secret }, named)
    }

    fn is_recovery(&self, secret: &str) -> bool {
        let recovery = self.tokens.read().map(|t| t.agent_recovery.clone()).unwrap_or_default();
        !recovery.is_empty() && secret == recovery
    }

    fn named_as(found: &Identity, named: bool) -> Arc<Identity> {
        Arc::new(Identity {
            accessor_id: found.accessor_id.clone(),
            authorizer: found.authorizer.clone(),
            named,
        })
    }

    /// The identity of a request carrying `secret` (empty: none).
    pub async fn resolve(&self, secret: &str) -> Result<Arc<Identity>, AclError> {
        match &self.source {
            Source::Catalog(_) => self.resolve_local(secret),
            Source::Servers(servers) => self.resolve_remote(servers.as_ref(), secret).await,
        }
    }

    /// A server's resolution, from its own catalog (DNS needs it without awaiting).
    pub fn resolve_local(&self, secret: &str) -> Result<Arc<Identity>, AclError> {
        self.resolve_catalog(secret, true)
    }

    fn resolve_catalog(&self, secret: &str, honour_recovery: bool) -> Result<Arc<Identity>, AclError> {
        if !self.config.enabled {
            return Ok(Acl::everything(false));
        }
        let (secret, named) = self.effective(secret);
        if honour_recovery && self.is_recovery(&secret) {
            return Ok(Acl::everything(named));
        }
        let Source::Catalog(catalog) = &self.source else { return Err(AclError::Unresolved) };
        let index = catalog.read(|s| s.table_index(Table::Autopilot));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.index != index {
                *cache = Cache { index, by_secret: HashMap::new() };
            }
            if let Some((_, found)) = cache.by_secret.get(&secret) {
                return Ok(Acl::named_as(found, named));
            }
        }
        let grants = catalog.read(|s| grants_of(s, &secret, &self.datacenter)).ok_or(AclError::NotFound)?;
        let identity = Arc::new(self.identity(&grants, named));
        if let Ok(mut cache) = self.cache.lock()
            && cache.index == index
        {
            cache.by_secret.insert(secret, (Instant::now(), identity.clone()));
        }
        Ok(identity)
    }

    async fn resolve_remote(
        &self,
        servers: &dyn GrantsSource,
        secret: &str,
    ) -> Result<Arc<Identity>, AclError> {
        if !self.config.enabled {
            return Ok(Acl::everything(false));
        }
        let (secret, named) = self.effective(secret);
        if self.is_recovery(&secret) {
            return Ok(Acl::everything(named));
        }
        let cached = self.cache.lock().ok().and_then(|c| c.by_secret.get(&secret).cloned());
        if let Some((at, found)) = &cached
            && at.elapsed() < TOKEN_TTL
        {
            return Ok(Acl::named_as(found, named));
        }
        match servers.grants(secret.clone()).await {
            Ok(Some(grants)) => {
                let identity = Arc::new(self.identity(&grants, named));
                if let Ok(mut cache) = self.cache.lock() {
                    cache.by_secret.insert(secret, (Instant::now(), identity.clone()));
                }
                Ok(identity)
            }
            Ok(None) => {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.by_secret.remove(&secret);
                }
                Err(AclError::NotFound)
            }
            Err(e) => match cached {
                Some((_, found)) => {
                    tracing::debug!(error = %e, "no server resolved the token; using the cached grants");
                    Ok(Acl::named_as(&found, named))
                }
                None => Err(AclError::Unresolved),
            },
        }
    }

    fn identity(&self, grants: &Grants, named: bool) -> Identity {
        let authorizer = Arc::new(if grants.management {
            Authorizer::management()
        } else {
            let parsed = grants.rules.iter().flat_map(|text| rules::parse(text).unwrap_or_default());
            Authorizer::from_rules(parsed, self.config.default_policy)
        });
        Identity { accessor_id: grants.accessor_id.clone(), authorizer, named }
    }
}

/// What the token with `secret` grants in `datacenter`, from a server's catalog; `None` for an
/// unknown or expired token.
pub fn grants_of(s: &CatalogState, secret: &str, datacenter: &str) -> Option<Grants> {
    let token = store::by_name::<Token>(s, secret)?;
    let now = crate::agent::log_stream::rfc3339(std::time::SystemTime::now());
    if token.expiration_time.as_deref().is_some_and(|t| t <= now.as_str()) {
        return None;
    }
    let mut grants =
        Grants { accessor_id: token.accessor_id.clone(), management: token.management, rules: Vec::new() };
    links(s, &token.policies, &mut grants);
    for link in &token.roles {
        let role =
            if link.id.is_empty() { store::by_name::<Role>(s, &link.name) } else { store::get(s, &link.id) };
        if let Some(role) = role {
            links(s, &role.policies, &mut grants);
            identities(&role, datacenter, &mut grants);
        }
    }
    let as_role = Role {
        service_identities: token.service_identities.clone(),
        node_identities: token.node_identities.clone(),
        templated_policies: token.templated_policies.clone(),
        ..Role::default()
    };
    identities(&as_role, datacenter, &mut grants);
    Some(grants)
}

fn links(s: &CatalogState, links: &[Link], grants: &mut Grants) {
    for link in links {
        if link.id == GLOBAL_MANAGEMENT_ID {
            grants.management = true;
            continue;
        }
        let policy = if link.id.is_empty() {
            store::by_name::<Policy>(s, &link.name)
        } else {
            store::get(s, &link.id)
        };
        // A stored policy was checked when written.
        if let Some(policy) = policy {
            grants.rules.push(policy.rules);
        }
    }
}

fn identities(holder: &Role, datacenter: &str, grants: &mut Grants) {
    for si in &holder.service_identities {
        if si.datacenters.is_empty() || si.datacenters.iter().any(|d| d == datacenter) {
            grants.rules.push(service_rules(&si.service_name));
        }
    }
    for ni in &holder.node_identities {
        if ni.datacenter == datacenter {
            grants.rules.push(node_rules(&ni.node_name));
        }
    }
    for tp in &holder.templated_policies {
        let name = tp.template_variables.as_ref().map(|v| v.name.as_str()).unwrap_or("");
        if let Some(text) = template(&tp.template_name).and_then(|t| t.rules(name)) {
            grants.rules.push(text);
        }
    }
}
