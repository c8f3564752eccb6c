//! From a request's token to what it may do: the token found by its SecretID (or the agent's
//! `default` token, else `anonymous`, when the request carries none), its policies, roles,
//! identities and templated policies merged into one `Authorizer`. Resolved tokens are cached
//! until an ACL record changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use super::authorizer::Authorizer;
use super::identities::{node_rules, service_rules, template};
use super::records::{ANONYMOUS_ACCESSOR, GLOBAL_MANAGEMENT_ID, Link, Policy, Role, Token};
use super::rules::{self, Rule};
use super::store;
use super::{AclConfig, AgentTokens};
use crate::catalog::{Catalog, CatalogState, Table};

/// Who a request is, for the ACL checks of its route.
#[derive(Debug)]
pub struct Identity {
    /// Empty for the agent recovery token and when ACLs are off.
    pub accessor_id: String,
    pub authorizer: Authorizer,
    /// Whether the request named a token itself (listings then say when they were filtered).
    pub named: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// The secret names no token (or an expired one).
    #[error("ACL not found")]
    NotFound,
}

#[derive(Default)]
struct Cache {
    /// The ACL table index the entries were resolved at.
    index: u64,
    by_secret: HashMap<String, Arc<Identity>>,
}

/// The agent's ACL system: its settings, its own tokens, and token resolution.
pub struct Acl {
    pub config: AclConfig,
    tokens: RwLock<AgentTokens>,
    catalog: Arc<Catalog>,
    datacenter: String,
    cache: Mutex<Cache>,
}

impl Acl {
    pub fn new(config: AclConfig, catalog: Arc<Catalog>, datacenter: String) -> Acl {
        let tokens = RwLock::new(config.tokens.clone());
        Acl { config, tokens, catalog, datacenter, cache: Mutex::new(Cache::default()) }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// `PUT /v1/agent/token/:kind`; false for a kind Consul does not have.
    pub fn set_agent_token(&self, kind: &str, secret: String) -> bool {
        let Ok(mut tokens) = self.tokens.write() else { return false };
        tokens.set(kind, secret)
    }

    /// The agent's `default` token: what requests without a token, and DNS, act as.
    pub fn default_token(&self) -> String {
        self.tokens.read().map(|t| t.default.clone()).unwrap_or_default()
    }

    /// The identity of a request carrying `secret` (empty: none).
    pub fn resolve(&self, secret: &str) -> Result<Arc<Identity>, AclError> {
        if !self.config.enabled {
            return Ok(Arc::new(Identity {
                accessor_id: String::new(),
                authorizer: Authorizer::management(),
                named: false,
            }));
        }
        let named = !secret.is_empty();
        let secret = if named { secret.to_string() } else { self.default_token() };
        let secret = if secret.is_empty() { super::records::ANONYMOUS_SECRET.to_string() } else { secret };
        let recovery = self.tokens.read().map(|t| t.agent_recovery.clone()).unwrap_or_default();
        if !recovery.is_empty() && secret == recovery {
            return Ok(Arc::new(Identity {
                accessor_id: String::new(),
                authorizer: Authorizer::management(),
                named,
            }));
        }
        let index = self.catalog.read(|s| s.table_index(Table::Autopilot));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.index != index {
                *cache = Cache { index, by_secret: HashMap::new() };
            }
            if let Some(found) = cache.by_secret.get(&secret) {
                return Ok(Arc::new(Identity {
                    accessor_id: found.accessor_id.clone(),
                    authorizer: found.authorizer.clone(),
                    named,
                }));
            }
        }
        let now = crate::agent::log_stream::rfc3339(std::time::SystemTime::now());
        let identity = self.catalog.read(|s| {
            let token = store::by_name::<Token>(s, &secret)?;
            if token.expiration_time.as_deref().is_some_and(|t| t <= now.as_str()) {
                return None;
            }
            Some(Identity {
                accessor_id: token.accessor_id.clone(),
                authorizer: self.authorizer_of(s, &token),
                named,
            })
        });
        let identity = Arc::new(identity.ok_or(AclError::NotFound)?);
        if let Ok(mut cache) = self.cache.lock()
            && cache.index == index
        {
            cache.by_secret.insert(secret, identity.clone());
        }
        Ok(identity)
    }

    fn authorizer_of(&self, s: &CatalogState, token: &Token) -> Authorizer {
        let mut grants = Grants::default();
        grants.links(s, &token.policies);
        for link in &token.roles {
            let role = if link.id.is_empty() {
                store::by_name::<Role>(s, &link.name)
            } else {
                store::get(s, &link.id)
            };
            if let Some(role) = role {
                grants.links(s, &role.policies);
                grants.identities(&role, &self.datacenter);
            }
        }
        let as_role = Role {
            service_identities: token.service_identities.clone(),
            node_identities: token.node_identities.clone(),
            templated_policies: token.templated_policies.clone(),
            ..Role::default()
        };
        grants.identities(&as_role, &self.datacenter);
        if grants.management || token.management {
            return Authorizer::management();
        }
        Authorizer::from_rules(grants.rules, self.config.default_policy)
    }

    /// The token a request without one acts as, for `/v1/acl/token/self` of the anonymous token.
    pub fn anonymous_accessor() -> &'static str {
        ANONYMOUS_ACCESSOR
    }
}

#[derive(Default)]
struct Grants {
    management: bool,
    rules: Vec<Rule>,
}

impl Grants {
    fn links(&mut self, s: &CatalogState, links: &[Link]) {
        for link in links {
            if link.id == GLOBAL_MANAGEMENT_ID {
                self.management = true;
                continue;
            }
            let policy = if link.id.is_empty() {
                store::by_name::<Policy>(s, &link.name)
            } else {
                store::get(s, &link.id)
            };
            if let Some(policy) = policy {
                // A stored policy was checked when written; one that no longer parses grants nothing.
                self.rules.extend(rules::parse(&policy.rules).unwrap_or_default());
            }
        }
    }

    fn identities(&mut self, holder: &Role, datacenter: &str) {
        let mut add = |text: String| self.rules.extend(rules::parse(&text).unwrap_or_default());
        for si in &holder.service_identities {
            if si.datacenters.is_empty() || si.datacenters.iter().any(|d| d == datacenter) {
                add(service_rules(&si.service_name));
            }
        }
        for ni in &holder.node_identities {
            if ni.datacenter == datacenter {
                add(node_rules(&ni.node_name));
            }
        }
        for tp in &holder.templated_policies {
            let name = tp.template_variables.as_ref().map(|v| v.name.as_str()).unwrap_or("");
            if let Some(text) = template(&tp.template_name).and_then(|t| t.rules(name)) {
                add(text);
            }
        }
    }
}
