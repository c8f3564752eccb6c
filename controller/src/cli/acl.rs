//! `census acl`: bootstrap, tokens, policies, roles, auth methods and binding rules, as
//! `consul acl` names them.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::{CliError, Format, HttpArgs};

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Create the first management token (once per cluster).
    Bootstrap,
    /// Create, list, read and delete policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Create, list, read and delete tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Create, list, read and delete roles.
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Create, list and delete auth methods.
    AuthMethod {
        #[command(subcommand)]
        command: AuthMethodCommand,
    },
    /// Create, list and delete binding rules.
    BindingRule {
        #[command(subcommand)]
        command: BindingRuleCommand,
    },
    /// Set one of the agent's own tokens (TYPE: default, agent, recovery, replication,
    /// config_file_service_registration), until it restarts unless acl.enable_token_persistence.
    SetAgentToken {
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The token's SecretID, or @FILE to read it from a file. (Not named `token`: that is
        /// `-token`'s, the request's own.)
        #[arg(value_name = "TOKEN")]
        secret: String,
    },
}

/// The grants a token or role carries.
#[derive(Debug, Clone, Default, Args)]
pub struct Grants {
    /// A policy by name (repeatable).
    #[arg(long = "policy-name")]
    pub policy_names: Vec<String>,
    /// A policy by ID (repeatable).
    #[arg(long = "policy-id")]
    pub policy_ids: Vec<String>,
    /// A service identity: NAME or NAME:DC1,DC2 (repeatable).
    #[arg(long = "service-identity")]
    pub service_identities: Vec<String>,
    /// A node identity: NAME:DC (repeatable).
    #[arg(long = "node-identity")]
    pub node_identities: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The rules (HCL or JSON), or @FILE to read them from a file.
        #[arg(long, default_value = "")]
        rules: String,
    },
    List,
    Read {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    Delete {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    Create {
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        grants: Grants,
        /// A role by name (repeatable).
        #[arg(long = "role-name")]
        role_names: Vec<String>,
        #[arg(long)]
        accessor: Option<String>,
        #[arg(long)]
        secret: Option<String>,
        #[arg(long)]
        local: bool,
        /// The token expires this long after it is created (1m to 24h).
        #[arg(long = "expires-ttl")]
        expires_ttl: Option<String>,
    },
    List,
    Read {
        #[arg(long = "accessor-id")]
        accessor_id: Option<String>,
        /// The token this command runs with.
        #[arg(long = "self")]
        own: bool,
    },
    Delete {
        #[arg(long = "accessor-id")]
        accessor_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        grants: Grants,
    },
    List,
    Read {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    Delete {
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthMethodCommand {
    Create {
        #[arg(long = "type")]
        kind: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The method's Config as JSON, or @FILE.
        #[arg(long, default_value = "{}")]
        config: String,
    },
    List,
    Delete {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BindingRuleCommand {
    Create {
        #[arg(long)]
        method: String,
        #[arg(long = "bind-type")]
        bind_type: String,
        #[arg(long = "bind-name")]
        bind_name: String,
        #[arg(long, default_value = "")]
        selector: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
    Delete {
        #[arg(long)]
        id: String,
    },
}

/// A line on standard output; a closed pipe (`census acl token list | head`) ends the output
/// quietly instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `@FILE` reads the file; anything else is the value itself.
fn text_or_file(value: &str) -> Result<String, CliError> {
    match value.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|source| CliError::File { path: path.into(), source })
        }
        None => Ok(value.to_string()),
    }
}

fn links(ids: &[String], names: &[String]) -> Vec<Value> {
    ids.iter().map(|id| json!({ "ID": id })).chain(names.iter().map(|n| json!({ "Name": n }))).collect()
}

fn identities(grants: &Grants) -> Result<(Vec<Value>, Vec<Value>), CliError> {
    let services = grants
        .service_identities
        .iter()
        .map(|s| match s.split_once(':') {
            Some((name, dcs)) => {
                json!({ "ServiceName": name, "Datacenters": dcs.split(',').collect::<Vec<_>>() })
            }
            None => json!({ "ServiceName": s }),
        })
        .collect();
    let mut nodes = Vec::new();
    for n in &grants.node_identities {
        let (name, dc) = n
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("-node-identity {n:?}: expected NAME:DATACENTER")))?;
        nodes.push(json!({ "NodeName": name, "Datacenter": dc }));
    }
    Ok((services, nodes))
}

/// Sends one request; prints the answer (JSON, or `Field: value` lines) or the error.
async fn call(http: &HttpArgs, method: Method, path: &str, body: Option<Value>) -> Result<i32, CliError> {
    let client = http.client()?;
    let body = body.map(|b| b.to_string().into_bytes());
    let (status, _, answer) = client.raw(method, path, &[], body, None).await?;
    if !status.is_success() {
        eprintln!("Error: {} ({})", String::from_utf8_lossy(&answer).trim(), status.as_u16());
        return Ok(1);
    }
    let value: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    match http.format {
        Format::Json => say!("{}", serde_json::to_string_pretty(&value).unwrap_or_default()),
        Format::Table => print_value(&value),
    }
    Ok(0)
}

fn print_value(value: &Value) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    say!();
                }
                print_value(item);
            }
        }
        Value::Object(fields) => {
            for (key, v) in fields {
                match v {
                    Value::String(s) if s.contains('\n') => say!("{key}:\n{s}"),
                    Value::String(s) => say!("{key}: {s}"),
                    Value::Array(items) => {
                        say!("{key}:");
                        for item in items {
                            let line = match item {
                                Value::Object(o) => o
                                    .values()
                                    .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
                                    .collect::<Vec<_>>()
                                    .join(" - "),
                                other => other.as_str().map_or(other.to_string(), str::to_string),
                            };
                            say!("   {line}");
                        }
                    }
                    Value::Null => {}
                    other => say!("{key}: {other}"),
                }
            }
        }
        Value::Bool(true) => {}
        other => say!("{other}"),
    }
}

fn one_of<'a>(
    id: &'a Option<String>,
    name: &'a Option<String>,
    what: &str,
) -> Result<(&'a str, bool), CliError> {
    match (id, name) {
        (Some(id), None) => Ok((id, false)),
        (None, Some(name)) => Ok((name, true)),
        _ => Err(CliError::Usage(format!("give exactly one of -id and -name for the {what}"))),
    }
}

pub async fn run(http: &HttpArgs, command: AclCommand) -> Result<i32, CliError> {
    match command {
        AclCommand::Bootstrap => call(http, Method::PUT, "/v1/acl/bootstrap", None).await,
        AclCommand::SetAgentToken { kind, secret } => {
            let slot = match kind.as_str() {
                "default" | "agent" | "replication" | "config_file_service_registration" => kind.as_str(),
                "recovery" | "agent_recovery" | "master" => "agent_recovery",
                other => return Err(CliError::Usage(format!("Unknown token type: {other}"))),
            };
            let client = http.client()?;
            let body = json!({ "Token": text_or_file(&secret)?.trim() }).to_string().into_bytes();
            let path = format!("/v1/agent/token/{slot}");
            let (status, _, answer) = client.raw(Method::PUT, &path, &[], Some(body), None).await?;
            if !status.is_success() {
                let why = String::from_utf8_lossy(&answer);
                eprintln!("Failed to set ACL token {kind:?}: {} ({})", why.trim(), status.as_u16());
                return Ok(1);
            }
            say!("ACL token {kind:?} set successfully");
            Ok(0)
        }
        AclCommand::Policy { command } => policy(http, command).await,
        AclCommand::Token { command } => token(http, command).await,
        AclCommand::Role { command } => role(http, command).await,
        AclCommand::AuthMethod { command } => match command {
            AuthMethodCommand::Create { kind, name, description, config } => {
                let config: Value = serde_json::from_str(&text_or_file(&config)?)
                    .map_err(|e| CliError::Usage(format!("-config is not JSON: {e}")))?;
                let body =
                    json!({ "Name": name, "Type": kind, "Description": description, "Config": config });
                call(http, Method::PUT, "/v1/acl/auth-method", Some(body)).await
            }
            AuthMethodCommand::List => call(http, Method::GET, "/v1/acl/auth-methods", None).await,
            AuthMethodCommand::Delete { name } => {
                call(http, Method::DELETE, &format!("/v1/acl/auth-method/{name}"), None).await
            }
        },
        AclCommand::BindingRule { command } => match command {
            BindingRuleCommand::Create { method, bind_type, bind_name, selector, description } => {
                let body = json!({ "AuthMethod": method, "BindType": bind_type, "BindName": bind_name,
                                   "Selector": selector, "Description": description });
                call(http, Method::PUT, "/v1/acl/binding-rule", Some(body)).await
            }
            BindingRuleCommand::List => call(http, Method::GET, "/v1/acl/binding-rules", None).await,
            BindingRuleCommand::Delete { id } => {
                call(http, Method::DELETE, &format!("/v1/acl/binding-rule/{id}"), None).await
            }
        },
    }
}

async fn policy(http: &HttpArgs, command: PolicyCommand) -> Result<i32, CliError> {
    match command {
        PolicyCommand::Create { name, description, rules } => {
            let body = json!({ "Name": name, "Description": description, "Rules": text_or_file(&rules)? });
            call(http, Method::PUT, "/v1/acl/policy", Some(body)).await
        }
        PolicyCommand::List => call(http, Method::GET, "/v1/acl/policies", None).await,
        PolicyCommand::Read { id, name } => {
            let (which, by_name) = one_of(&id, &name, "policy")?;
            let path = if by_name {
                format!("/v1/acl/policy/name/{which}")
            } else {
                format!("/v1/acl/policy/{which}")
            };
            call(http, Method::GET, &path, None).await
        }
        PolicyCommand::Delete { id, name } => {
            let (which, by_name) = one_of(&id, &name, "policy")?;
            let id = if by_name { policy_id(http, which).await? } else { which.to_string() };
            call(http, Method::DELETE, &format!("/v1/acl/policy/{id}"), None).await
        }
    }
}

async fn policy_id(http: &HttpArgs, name: &str) -> Result<String, CliError> {
    let client = http.client()?;
    let (status, _, answer) =
        client.raw(Method::GET, &format!("/v1/acl/policy/name/{name}"), &[], None, None).await?;
    let found: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    match found.get("ID").and_then(Value::as_str) {
        Some(id) if status.is_success() => Ok(id.to_string()),
        _ => Err(CliError::Usage(format!("no policy named {name:?}"))),
    }
}

async fn token(http: &HttpArgs, command: TokenCommand) -> Result<i32, CliError> {
    match command {
        TokenCommand::Create { description, grants, role_names, accessor, secret, local, expires_ttl } => {
            let (services, nodes) = identities(&grants)?;
            let mut body = json!({
                "Description": description,
                "Policies": links(&grants.policy_ids, &grants.policy_names),
                "Roles": links(&[], &role_names),
                "ServiceIdentities": services,
                "NodeIdentities": nodes,
                "Local": local,
            });
            for (field, value) in
                [("AccessorID", accessor), ("SecretID", secret), ("ExpirationTTL", expires_ttl)]
            {
                if let Some(v) = value {
                    body[field] = json!(v);
                }
            }
            call(http, Method::PUT, "/v1/acl/token", Some(body)).await
        }
        TokenCommand::List => call(http, Method::GET, "/v1/acl/tokens", None).await,
        TokenCommand::Read { accessor_id, own } => match (accessor_id, own) {
            (Some(id), false) => call(http, Method::GET, &format!("/v1/acl/token/{id}"), None).await,
            (None, true) => call(http, Method::GET, "/v1/acl/token/self", None).await,
            _ => Err(CliError::Usage("give exactly one of -accessor-id and -self".into())),
        },
        TokenCommand::Delete { accessor_id } => {
            call(http, Method::DELETE, &format!("/v1/acl/token/{accessor_id}"), None).await
        }
    }
}

async fn role(http: &HttpArgs, command: RoleCommand) -> Result<i32, CliError> {
    match command {
        RoleCommand::Create { name, description, grants } => {
            let (services, nodes) = identities(&grants)?;
            let body = json!({
                "Name": name,
                "Description": description,
                "Policies": links(&grants.policy_ids, &grants.policy_names),
                "ServiceIdentities": services,
                "NodeIdentities": nodes,
            });
            call(http, Method::PUT, "/v1/acl/role", Some(body)).await
        }
        RoleCommand::List => call(http, Method::GET, "/v1/acl/roles", None).await,
        RoleCommand::Read { id, name } => {
            let (which, by_name) = one_of(&id, &name, "role")?;
            let path =
                if by_name { format!("/v1/acl/role/name/{which}") } else { format!("/v1/acl/role/{which}") };
            call(http, Method::GET, &path, None).await
        }
        RoleCommand::Delete { id } => call(http, Method::DELETE, &format!("/v1/acl/role/{id}"), None).await,
    }
}
