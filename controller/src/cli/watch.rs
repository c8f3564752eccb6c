//! `census watch -type key|keyprefix|services|service|nodes|checks|event [HANDLER…]`: follows a view of
//! the catalog with blocking queries and, whenever it changes, runs HANDLER with the view as JSON
//! on standard input and `CONSUL_INDEX` in its environment (or prints the JSON without a handler).

use std::process::Stdio;
use std::time::Duration;

use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{CliError, HttpArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchType {
    Key,
    Keyprefix,
    Services,
    Service,
    Nodes,
    Checks,
    /// User events (`census event`), as the local agent received them by gossip.
    Event,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to watch.
    #[arg(long = "type", value_enum)]
    pub kind: WatchType,
    /// The key (-type key).
    #[arg(long)]
    pub key: Option<String>,
    /// The prefix (-type keyprefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// The service (-type service; with -type checks, only its checks).
    #[arg(long)]
    pub service: Option<String>,
    /// Only instances with this tag (-type service; repeatable).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Only passing instances (-type service).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub passingonly: Option<bool>,
    /// Only events of this name (-type event).
    #[arg(long)]
    pub name: Option<String>,
    /// Only checks in this state (-type checks): any, passing, warning, critical.
    #[arg(long)]
    pub state: Option<String>,
    /// Let any server answer.
    #[arg(long)]
    pub stale: bool,
    /// Run through `sh -c` when the handler is one argument (as Consul does).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub shell: Option<bool>,
    /// The handler and its arguments; without one, each new result is printed.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub handler: Vec<String>,
}

/// The query parameters of a watch's endpoint.
type Params = Vec<(&'static str, String)>;

/// The endpoint, its parameters, and whether the answer is a one-element list to unwrap.
fn endpoint(args: &WatchArgs) -> Result<(String, Params, bool), CliError> {
    let need = |v: &Option<String>, flag: &str| {
        v.clone().ok_or_else(|| CliError::Usage(format!("Must specify -{flag} for this watch type")))
    };
    let encode = census_client::client::encode_segment;
    let mut params = Vec::new();
    if args.stale {
        params.push(("stale", String::new()));
    }
    let path = match args.kind {
        WatchType::Key => {
            return Ok((format!("/v1/kv/{}", encode(&need(&args.key, "key")?)), params, true));
        }
        WatchType::Keyprefix => {
            params.push(("recurse", String::new()));
            format!("/v1/kv/{}", encode(&need(&args.prefix, "prefix")?))
        }
        WatchType::Services => "/v1/catalog/services".to_string(),
        WatchType::Event => {
            if let Some(name) = &args.name {
                params.push(("name", name.clone()));
            }
            "/v1/event/list".to_string()
        }
        WatchType::Nodes => "/v1/catalog/nodes".to_string(),
        WatchType::Service => {
            params.extend(args.tag.iter().map(|t| ("tag", t.clone())));
            if args.passingonly == Some(true) {
                params.push(("passing", String::new()));
            }
            format!("/v1/health/service/{}", encode(&need(&args.service, "service")?))
        }
        WatchType::Checks => match (&args.service, &args.state) {
            (Some(_), Some(_)) => {
                return Err(CliError::Usage("Cannot specify both -service and -state".into()));
            }
            (Some(service), None) => format!("/v1/health/checks/{}", encode(service)),
            (None, state) => format!("/v1/health/state/{}", encode(state.as_deref().unwrap_or("any"))),
        },
    };
    Ok((path, params, false))
}

pub async fn run(http: &HttpArgs, args: WatchArgs) -> Result<i32, CliError> {
    let client = http.client()?;
    let (path, params, single) = endpoint(&args)?;
    let mut index: u64 = 0;
    let mut last: Option<Value> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut query = params.clone();
        if index > 0 {
            query.push(("index", index.to_string()));
            query.push(("wait", "5m".to_string()));
        }
        let answer = client.raw(Method::GET, &path, &query, None, Some(Duration::from_secs(330))).await;
        let (status, headers, body) = match answer {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("census watch: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(20));
                continue;
            }
        };
        let new_index: u64 = headers
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let value = match status.as_u16() {
            200 => serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            404 => Value::Null,
            code if (400..500).contains(&code) => {
                return Err(CliError::Usage(format!(
                    "{path}: {code} {}",
                    String::from_utf8_lossy(&body).trim()
                )));
            }
            code => {
                eprintln!("census watch: {path}: {code}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(20));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let value = if single { value.get(0).cloned().unwrap_or(Value::Null) } else { value };
        // An index that went backwards (a snapshot restore) starts over; 0 is never waited on.
        index = if new_index < index { 0 } else { new_index.max(1) };
        if last.as_ref() == Some(&value) || (last.is_none() && single && value.is_null()) {
            continue;
        }
        last = Some(value.clone());
        deliver(&args, &value, new_index).await;
    }
}

async fn deliver(args: &WatchArgs, value: &Value, index: u64) {
    let json = serde_json::to_string_pretty(value).unwrap_or_default();
    if args.handler.is_empty() {
        println!("{json}");
        return;
    }
    let mut cmd = if args.handler.len() == 1 && args.shell != Some(false) {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(&args.handler[0]);
        cmd
    } else {
        let mut cmd = tokio::process::Command::new(&args.handler[0]);
        cmd.args(&args.handler[1..]);
        cmd
    };
    cmd.env("CONSUL_INDEX", index.to_string()).stdin(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("census watch: cannot run handler {:?}: {e}", args.handler);
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A handler that does not read its input is not an error.
        let _ = stdin.write_all(json.as_bytes()).await;
    }
    match child.wait().await {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("census watch: handler {:?} exited with {status}", args.handler),
        Err(e) => eprintln!("census watch: handler {:?}: {e}", args.handler),
    }
}
