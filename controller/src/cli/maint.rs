//! `census maint [-enable|-disable] [-service ID] [-reason TEXT]`: node or service maintenance
//! mode; without -enable or -disable, lists what is in maintenance on the agent.

use std::collections::BTreeMap;

use census_client::types::HealthCheck;
use clap::Args;
use reqwest::Method;

use super::{CliError, HttpArgs};
use crate::http::maintenance::{NODE_CHECK, SERVICE_CHECK_PREFIX};

#[derive(Debug, Args)]
pub struct MaintArgs {
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
    /// A service ID on this agent instead of the whole node.
    #[arg(long)]
    pub service: Option<String>,
    /// Why (shown in the checks' notes).
    #[arg(long)]
    pub reason: Option<String>,
}

pub async fn run(http: &HttpArgs, args: MaintArgs) -> Result<i32, CliError> {
    let client = http.client()?;
    if !args.enable && !args.disable {
        if args.service.is_some() || args.reason.is_some() {
            return Err(CliError::Usage("-service and -reason need -enable or -disable".into()));
        }
        let (_, _, body) = client.raw(Method::GET, "/v1/agent/checks", &[], None, None).await?;
        let checks: BTreeMap<String, HealthCheck> =
            serde_json::from_slice(&body).map_err(|e| CliError::Usage(format!("agent answered: {e}")))?;
        print!("{}", listing(&checks));
        return Ok(0);
    }
    let mut params = vec![("enable", args.enable.to_string())];
    if let Some(reason) = &args.reason {
        params.push(("reason", reason.clone()));
    }
    let path = match &args.service {
        Some(id) => format!("/v1/agent/service/maintenance/{}", census_client::client::encode_segment(id)),
        None => "/v1/agent/maintenance".to_string(),
    };
    let (status, _, body) = client.raw(Method::PUT, &path, &params, None, None).await?;
    if !status.is_success() {
        eprintln!("Error: {status} {}", String::from_utf8_lossy(&body).trim());
        return Ok(1);
    }
    let verb = if args.enable { "enabled" } else { "disabled" };
    match &args.service {
        Some(id) => println!("Service maintenance is now {verb} for {id:?}"),
        None => println!("Node maintenance is now {verb}"),
    }
    Ok(0)
}

fn listing(checks: &BTreeMap<String, HealthCheck>) -> String {
    let mut out = String::new();
    for check in checks.values() {
        if check.check_id == NODE_CHECK {
            out.push_str(&format!("Node:\n  Name:   {}\n  Reason: {}\n\n", check.node, check.notes));
        } else if let Some(id) = check.check_id.strip_prefix(SERVICE_CHECK_PREFIX) {
            out.push_str(&format!("Service:\n  ID:     {id}\n  Reason: {}\n\n", check.notes));
        }
    }
    out
}
