//! The gossip commands: `census force-leave`, `census event`, `census keygen`, `census keyring`.

use clap::Args;
use reqwest::Method;

use super::{CliError, HttpArgs};

#[derive(Debug, Clone, Args)]
pub struct ForceLeaveArgs {
    /// Forget the node at once instead of keeping it as `left` until it is reaped.
    #[arg(long)]
    pub prune: bool,
    /// The failed node.
    pub node: String,
}

#[derive(Debug, Clone, Args)]
pub struct EventArgs {
    /// The event's name.
    #[arg(long)]
    pub name: String,
    /// Only agents whose node name matches this regular expression take it.
    #[arg(long, value_name = "REGEXP")]
    pub node: Option<String>,
    /// Only agents running a service whose name matches this regular expression take it.
    #[arg(long, value_name = "REGEXP")]
    pub service: Option<String>,
    /// With -service: only instances with a tag matching this regular expression.
    #[arg(long, value_name = "REGEXP")]
    pub tag: Option<String>,
    /// The payload (at most 512 bytes).
    pub payload: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct KeyringArgs {
    /// List the installed keys and how many members have each.
    #[arg(long)]
    pub list: bool,
    /// Install a new key on every member.
    #[arg(long, value_name = "KEY")]
    pub install: Option<String>,
    /// Make an installed key the one every member encrypts with.
    #[arg(long = "use", value_name = "KEY")]
    pub use_key: Option<String>,
    /// Remove a key from every member (not the primary one).
    #[arg(long, value_name = "KEY")]
    pub remove: Option<String>,
    /// With -list: only this agent's keys.
    #[arg(long)]
    pub local_only: bool,
}

/// The error text of an answer that is not 200.
fn failure(status: reqwest::StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() { format!("Unexpected response code: {status}") } else { text }
}

pub async fn force_leave(http: &HttpArgs, args: ForceLeaveArgs) -> Result<i32, CliError> {
    let params: Vec<(&str, String)> = if args.prune { vec![("prune", "1".into())] } else { Vec::new() };
    let path = format!("/v1/agent/force-leave/{}", args.node);
    let (status, _, body) = http.client()?.raw(Method::PUT, &path, &params, None, None).await?;
    if !status.is_success() {
        eprintln!("Error force leaving: {}", failure(status, &body));
        return Ok(1);
    }
    Ok(0)
}

pub async fn event(http: &HttpArgs, args: EventArgs) -> Result<i32, CliError> {
    let mut params: Vec<(&str, String)> = Vec::new();
    for (name, value) in [("node", &args.node), ("service", &args.service), ("tag", &args.tag)] {
        if let Some(v) = value {
            params.push((name, v.clone()));
        }
    }
    if args.tag.is_some() && args.service.is_none() {
        return Err(CliError::Usage("Cannot provide tag filter without service filter.".into()));
    }
    let body = args.payload.map(String::into_bytes);
    let path = format!("/v1/event/fire/{}", args.name);
    let (status, _, answer) = http.client()?.raw(Method::PUT, &path, &params, body, None).await?;
    if !status.is_success() {
        eprintln!("Error firing event: {}", failure(status, &answer));
        return Ok(1);
    }
    let fired: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
    println!("Event ID: {}", fired["ID"].as_str().unwrap_or_default());
    Ok(0)
}

pub fn keygen() -> Result<i32, CliError> {
    let key = crate::gossip::keyring::generate().map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{key}");
    Ok(0)
}

pub async fn keyring(http: &HttpArgs, args: KeyringArgs) -> Result<i32, CliError> {
    let chosen = [args.list, args.install.is_some(), args.use_key.is_some(), args.remove.is_some()];
    if chosen.iter().filter(|c| **c).count() != 1 {
        return Err(CliError::Usage("Exactly one operation must be specified".into()));
    }
    if args.local_only && !args.list {
        return Err(CliError::Usage("Cannot use -local-only with other operations than -list".into()));
    }
    let client = http.client()?;
    let (method, key, doing) = match (&args.install, &args.use_key, &args.remove) {
        (Some(k), _, _) => (Method::POST, k, "Installing new gossip encryption key..."),
        (_, Some(k), _) => (Method::PUT, k, "Changing primary gossip encryption key..."),
        (_, _, Some(k)) => (Method::DELETE, k, "Removing gossip encryption key..."),
        _ => return list(&client, args.local_only).await,
    };
    println!("==> {doing}");
    let body = serde_json::to_vec(&serde_json::json!({ "Key": key })).unwrap_or_default();
    let (status, _, answer) = client.raw(method, "/v1/operator/keyring", &[], Some(body), None).await?;
    if !status.is_success() {
        eprintln!("error: {}", failure(status, &answer));
        return Ok(1);
    }
    Ok(0)
}

async fn list(client: &census_client::Client, local_only: bool) -> Result<i32, CliError> {
    println!("==> Gathering installed encryption keys...");
    let params: Vec<(&str, String)> = if local_only { vec![("local-only", "1".into())] } else { Vec::new() };
    let (status, _, answer) = client.raw(Method::GET, "/v1/operator/keyring", &params, None, None).await?;
    if !status.is_success() {
        eprintln!("error: {}", failure(status, &answer));
        return Ok(1);
    }
    let pools: Vec<serde_json::Value> = serde_json::from_slice(&answer).unwrap_or_default();
    for pool in pools {
        let nodes = pool["NumNodes"].as_u64().unwrap_or(0);
        match pool["WAN"].as_bool() {
            Some(true) => println!("\nWAN:"),
            _ => println!("\n{} (LAN):", pool["Datacenter"].as_str().unwrap_or_default()),
        }
        if let Some(keys) = pool["Keys"].as_object() {
            for (key, count) in keys {
                println!("  {key} [{}/{nodes}]", count.as_u64().unwrap_or(0));
            }
        }
    }
    Ok(0)
}
