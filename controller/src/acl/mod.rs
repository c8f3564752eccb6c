//! Consul's ACL system: the rules language, authorizers, tokens and their resolution, the
//! built-in policies and identities. Records live in the catalog as documents (`store`); the
//! HTTP layer checks every route against the request's `Identity` (`http::authz`).

pub mod authorizer;
pub mod identities;
pub mod records;
pub mod registration_tokens;
pub mod resolver;
pub mod rules;
pub mod store;
pub mod token_file;

pub use authorizer::{Authorizer, DefaultPolicy};
pub use resolver::{Acl, AclError, Grants, GrantsSource, Identity};
pub use rules::{Access, Resource};

/// The agent's own tokens (`acl.tokens`, and `PUT /v1/agent/token/:kind`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentTokens {
    pub initial_management: String,
    pub default: String,
    pub agent: String,
    pub agent_recovery: String,
    pub replication: String,
    pub config_file_service_registration: String,
}

impl AgentTokens {
    /// Sets one token by the name `/v1/agent/token/:kind` uses (and its legacy aliases).
    pub fn set(&mut self, kind: &str, secret: String) -> bool {
        let slot = match kind {
            "default" | "acl_token" => &mut self.default,
            "agent" | "acl_agent_token" => &mut self.agent,
            "agent_recovery" | "agent_master" | "acl_agent_master_token" => &mut self.agent_recovery,
            "replication" | "acl_replication_token" => &mut self.replication,
            "config_file_service_registration" => &mut self.config_file_service_registration,
            _ => return false,
        };
        *slot = secret;
        true
    }

    /// Takes every token `over` has set (not empty) in place of this one's.
    pub fn overlay(&mut self, over: &AgentTokens) {
        for (slot, value) in [
            (&mut self.initial_management, &over.initial_management),
            (&mut self.default, &over.default),
            (&mut self.agent, &over.agent),
            (&mut self.agent_recovery, &over.agent_recovery),
            (&mut self.replication, &over.replication),
            (&mut self.config_file_service_registration, &over.config_file_service_registration),
        ] {
            if !value.is_empty() {
                slot.clone_from(value);
            }
        }
    }
}

/// The `acl` block of the agent's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclConfig {
    pub enabled: bool,
    pub default_policy: DefaultPolicy,
    /// `acl.enable_key_list_policy`: recursive KV reads need `list` on the prefix.
    pub enable_key_list_policy: bool,
    /// `acl.enable_token_persistence`: tokens set through the API survive a restart (token_file.rs).
    pub enable_token_persistence: bool,
    pub tokens: AgentTokens,
}
