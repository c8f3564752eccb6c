//! `census members|join|leave|catalog|services|operator`.

use std::path::PathBuf;

use census_client::QueryOptions;
use census_client::types::AgentServiceRegistration;
use clap::Subcommand;

use super::table::render;
use super::{CliError, Format, HttpArgs};

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// List services (with -tags, their tags).
    Services {
        #[arg(long)]
        tags: bool,
    },
    /// List nodes.
    Nodes,
    /// List datacenters.
    Datacenters,
}

#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// Register the services of a definition file (`{"service": {...}}`, `{"services": [...]}`).
    Register { file: PathBuf },
    /// Deregister by the IDs in a definition file, or by -id.
    Deregister {
        file: Option<PathBuf>,
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Raft membership.
    Raft {
        #[command(subcommand)]
        command: RaftCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RaftCommand {
    /// List the Raft peers.
    ListPeers {
        #[arg(long)]
        stale: bool,
    },
    /// Hand leadership to the most caught-up server; this one stops taking part in Raft until
    /// it restarts (a pod's preStop). `-if-leader`: do nothing on a follower.
    TransferLeader {
        #[arg(long)]
        if_leader: bool,
    },
    /// Remove a peer by address (IP:port) or ID.
    RemovePeer {
        #[arg(long)]
        address: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
}

fn print_json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

pub async fn members(http: &HttpArgs, detailed: bool) -> Result<i32, CliError> {
    let members = http.client()?.agent_members().await?;
    if http.format == Format::Json {
        print_json(&members);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            let mut row = vec![m.name.clone(), format!("{}:{}", m.addr, m.port), m.status_name().to_string()];
            if detailed {
                row.push(m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
            } else {
                let role = m.tags.get("role").map(String::as_str);
                row.push(if role == Some("consul") { "server" } else { "client" }.into());
                let build = m.tags.get("build").map(String::as_str).unwrap_or_default();
                row.push(build.split(':').next().unwrap_or_default().to_string());
                row.push(m.tags.get("dc").cloned().unwrap_or_default());
            }
            row
        })
        .collect();
    let header: &[&str] = if detailed {
        &["Node", "Address", "Status", "Tags"]
    } else {
        &["Node", "Address", "Status", "Type", "Build", "DC"]
    };
    println!("{}", render(header, &rows));
    Ok(0)
}

pub async fn join(http: &HttpArgs, addresses: &[String]) -> Result<i32, CliError> {
    let client = http.client()?;
    let mut joined = 0;
    for addr in addresses {
        match client.agent_join(addr).await {
            Ok(()) => joined += 1,
            Err(e) => eprintln!("Error joining address '{addr}': {e}"),
        }
    }
    if joined == 0 {
        return Ok(1);
    }
    println!("Successfully joined cluster by contacting {joined} nodes.");
    Ok(0)
}

pub async fn leave(http: &HttpArgs) -> Result<i32, CliError> {
    http.client()?.agent_leave().await?;
    println!("Graceful leave complete");
    Ok(0)
}

pub async fn reload(http: &HttpArgs) -> Result<i32, CliError> {
    http.client()?.raw_call(reqwest::Method::PUT, "/v1/agent/reload").await?;
    println!("Configuration reload triggered");
    Ok(0)
}

pub async fn catalog(http: &HttpArgs, command: CatalogCommand) -> Result<i32, CliError> {
    let client = http.client()?;
    match command {
        CatalogCommand::Services { tags } => {
            let (services, _) = client.catalog_services(&QueryOptions::default()).await?;
            if http.format == Format::Json {
                print_json(&services);
            } else if tags {
                let rows: Vec<Vec<String>> =
                    services.iter().map(|(name, tags)| vec![name.clone(), tags.join(",")]).collect();
                println!("{}", render(&["Service", "Tags"], &rows));
            } else {
                for name in services.keys() {
                    println!("{name}");
                }
            }
        }
        CatalogCommand::Nodes => {
            let (nodes, _) = client.catalog_nodes(&QueryOptions::default()).await?;
            if http.format == Format::Json {
                print_json(&nodes);
            } else {
                let rows: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|n| {
                        vec![
                            n.node.clone(),
                            n.id.chars().take(8).collect(),
                            n.address.clone(),
                            n.datacenter.clone(),
                        ]
                    })
                    .collect();
                println!("{}", render(&["Node", "ID", "Address", "DC"], &rows));
            }
        }
        CatalogCommand::Datacenters => {
            let (dcs, _) =
                client.query::<Vec<String>>("/v1/catalog/datacenters", &[], &QueryOptions::default()).await?;
            for dc in dcs {
                println!("{dc}");
            }
        }
    }
    Ok(0)
}

/// Reads the services of a definition file, decoded as the agent decodes them.
fn read_definitions(path: &PathBuf) -> Result<Vec<AgentServiceRegistration>, CliError> {
    let text =
        std::fs::read(path).map_err(|source| CliError::File { path: path.display().to_string(), source })?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| CliError::Usage(format!("{}: invalid JSON: {e}", path.display())))?;
    let items: Vec<serde_json::Value> = match (value.get("service"), value.get("services")) {
        (Some(one), _) => vec![one.clone()],
        (None, Some(serde_json::Value::Array(many))) => many.clone(),
        _ => vec![value],
    };
    items
        .into_iter()
        .map(|item| {
            let bytes = serde_json::to_vec(&item).map_err(|e| CliError::Usage(e.to_string()))?;
            crate::http::decode::decode_json(&bytes)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
        })
        .collect()
}

pub async fn services(http: &HttpArgs, command: ServicesCommand) -> Result<i32, CliError> {
    let client = http.client()?;
    match command {
        ServicesCommand::Register { file } => {
            for svc in read_definitions(&file)? {
                client.agent_service_register(&svc).await?;
                println!("Registered service: {}", svc.name);
            }
        }
        ServicesCommand::Deregister { file, id } => {
            let ids: Vec<String> = match (file, id) {
                (_, Some(id)) => vec![id],
                (Some(file), None) => read_definitions(&file)?
                    .into_iter()
                    .map(|s| if s.id.is_empty() { s.name } else { s.id })
                    .collect(),
                (None, None) => return Err(CliError::Usage("give a definition file or -id".into())),
            };
            for id in ids {
                client.agent_service_deregister(&id).await?;
                println!("Deregistered service: {id}");
            }
        }
    }
    Ok(0)
}

pub async fn operator(http: &HttpArgs, command: OperatorCommand) -> Result<i32, CliError> {
    let client = http.client()?;
    let OperatorCommand::Raft { command } = command;
    match command {
        RaftCommand::ListPeers { stale } => {
            let config = client.raft_configuration(stale).await?;
            if http.format == Format::Json {
                print_json(&config);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = config
                .servers
                .iter()
                .map(|s| {
                    vec![
                        s.node.clone(),
                        s.id.clone(),
                        s.address.clone(),
                        if s.leader { "leader" } else { "follower" }.to_string(),
                        s.voter.to_string(),
                        "3".into(),
                    ]
                })
                .collect();
            println!("{}", render(&["Node", "ID", "Address", "State", "Voter", "RaftProtocol"], &rows));
        }
        RaftCommand::TransferLeader { if_leader } => {
            let query: Vec<(&str, String)> =
                if if_leader { vec![("if-leader", String::new())] } else { Vec::new() };
            let (status, _, body) = client
                .raw(reqwest::Method::POST, "/v1/operator/raft/transfer-leader", &query, None, None)
                .await?;
            let text = String::from_utf8_lossy(&body);
            if !status.is_success() {
                eprintln!("Error transferring leadership: {}", text.trim());
                return Ok(1);
            }
            let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match answer.get("NewLeader").and_then(|v| v.as_str()) {
                Some(to) => println!("Success: leadership handed to server {to}"),
                None => println!("Not the leader: nothing to hand over"),
            }
        }
        RaftCommand::RemovePeer { address, id } => {
            if address.is_none() && id.is_none() {
                return Err(CliError::Usage("Must specify -address or -id".into()));
            }
            client.raft_remove_peer(address.as_deref(), id.as_deref()).await?;
            println!("Removed peer {}", address.or(id).unwrap_or_default());
        }
    }
    Ok(0)
}
