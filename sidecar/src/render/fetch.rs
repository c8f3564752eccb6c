//! One (blocking) catalog query per dependency, shaped into the JSON templates see.

use std::collections::BTreeMap;
use std::time::Duration;

use census_client::types::{CatalogNode, KvPair, Node, ServiceEntry};
use census_client::{Client, ClientError, QueryOptions};
use serde_json::{Value, json};

use super::deps::Dependency;

/// The data of one dependency and the index to block on next.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub value: Value,
    pub index: u64,
}

fn kv_value(pair: &KvPair) -> String {
    pair.decoded_value().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// Tags in sorted order, as consul-template hands them to templates.
fn sorted(tags: &[String]) -> Vec<&String> {
    let mut tags: Vec<&String> = tags.iter().collect();
    tags.sort();
    tags
}

/// The worst status among checks; `passing` when there are none.
fn aggregate(statuses: impl Iterator<Item = String>) -> &'static str {
    let mut worst = "passing";
    for s in statuses {
        match s.as_str() {
            "critical" => return "critical",
            "maintenance" => worst = "maintenance",
            "warning" if worst == "passing" => worst = "warning",
            _ => {}
        }
    }
    worst
}

/// A health entry as consul-template's `service` shows it. Check output is left out: it changes
/// often and templates that balance traffic do not use it, so it would only cause idle renders.
fn service_entry(e: &ServiceEntry) -> Value {
    let address = if e.service.address.is_empty() { &e.node.address } else { &e.service.address };
    let checks: Vec<Value> =
        e.checks.iter().map(|c| json!({"CheckID": c.check_id, "Name": c.name, "Status": c.status})).collect();
    json!({
        "ID": e.service.id,
        "Name": e.service.service,
        "Tags": sorted(&e.service.tags),
        "Address": address,
        "Port": e.service.port,
        "Meta": e.service.meta,
        "ServiceMeta": e.service.meta,
        "Weights": {"Passing": e.service.weights.passing, "Warning": e.service.weights.warning},
        "Node": e.node.node,
        "NodeID": e.node.id,
        "NodeAddress": e.node.address,
        "NodeTaggedAddresses": e.node.tagged_addresses,
        "NodeDatacenter": e.node.datacenter,
        "NodeMeta": e.node.meta,
        "Status": aggregate(e.checks.iter().map(|c| c.status.clone())),
        "Checks": checks,
    })
}

fn node(n: &Node) -> Value {
    json!({
        "ID": n.id, "Node": n.node, "Address": n.address, "Datacenter": n.datacenter,
        "TaggedAddresses": n.tagged_addresses, "Meta": n.meta,
    })
}

/// Runs the query for `dep`; with `index > 0` it blocks until the data changes or `wait` passes.
pub async fn fetch(
    client: &Client,
    dep: &Dependency,
    index: u64,
    wait: Duration,
) -> Result<Fetched, ClientError> {
    let opts = QueryOptions::blocking(index, wait);
    let (value, meta) = match dep {
        Dependency::Services => {
            let (services, meta) = client.catalog_services(&opts).await?;
            let list: Vec<Value> =
                services.iter().map(|(name, tags)| json!({"Name": name, "Tags": sorted(tags)})).collect();
            (Value::Array(list), meta)
        }
        Dependency::Service { name, tag, dc } | Dependency::Connect { name, tag, dc } => {
            let mut params = Vec::new();
            if let Some(tag) = tag {
                params.push(("tag", tag.clone()));
            }
            if let Some(dc) = dc {
                params.push(("dc", dc.clone()));
            }
            let endpoint = if matches!(dep, Dependency::Connect { .. }) { "connect" } else { "service" };
            let path = format!("/v1/health/{endpoint}/{}", census_client::client::encode_segment(name));
            let (entries, meta): (Vec<ServiceEntry>, _) = client.query(&path, &params, &opts).await?;
            (Value::Array(entries.iter().map(service_entry).collect()), meta)
        }
        Dependency::Nodes => {
            let (nodes, meta) = client.catalog_nodes(&opts).await?;
            (Value::Array(nodes.iter().map(node).collect()), meta)
        }
        Dependency::Node(name) => {
            let path = format!("/v1/catalog/node/{}", census_client::client::encode_segment(name));
            let (found, meta): (Option<CatalogNode>, _) = client.query(&path, &[], &opts).await?;
            let value = match found {
                Some(c) => {
                    let services: BTreeMap<&String, Value> = c
                        .services
                        .iter()
                        .map(|(id, s)| {
                            (id, json!({"ID": s.id, "Name": s.service, "Service": s.service, "Tags": s.tags, "Port": s.port, "Address": s.address, "Meta": s.meta}))
                        })
                        .collect();
                    json!({"Node": node(&c.node), "Services": services.into_values().collect::<Vec<_>>()})
                }
                None => Value::Null,
            };
            (value, meta)
        }
        Dependency::Key(key) => {
            let (pair, meta) = client.kv_get(key, &opts).await?;
            (pair.map_or(Value::Null, |p| Value::String(kv_value(&p))), meta)
        }
        Dependency::Tree(prefix) => {
            let (pairs, meta) = client.kv_list(prefix, &opts).await?;
            let list =
                pairs.iter().map(|p| json!({"Key": p.key, "Value": kv_value(p), "Flags": p.flags})).collect();
            (Value::Array(list), meta)
        }
        Dependency::Datacenters => {
            // Not a blocking endpoint: after the first answer, ask again every POLL.
            if index > 0 {
                tokio::time::sleep(POLL.min(wait)).await;
            }
            let (dcs, meta): (Vec<String>, _) = client.query("/v1/catalog/datacenters", &[], &opts).await?;
            (json!(dcs), meta)
        }
        Dependency::LocalNode => {
            let name = client.agent_self().await?.config.node_name;
            return Box::pin(fetch(client, &Dependency::Node(name), index, wait)).await;
        }
        Dependency::File(path) => return Ok(poll_file(path, index, wait).await),
    };
    Ok(Fetched { value, index: meta.last_index })
}

/// How often `datacenters` and `file` look again.
const POLL: Duration = Duration::from_secs(2);

/// A file's text (`null` while it cannot be read); its "index" is a hash of what was read, and
/// with `index > 0` this waits (up to `wait`) for the text to differ from that.
async fn poll_file(path: &std::path::Path, index: u64, wait: Duration) -> Fetched {
    let read = || {
        let value = std::fs::read_to_string(path).map_or(Value::Null, Value::String);
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&value.to_string(), &mut hasher);
        let index = std::hash::Hasher::finish(&hasher).max(1);
        Fetched { value, index }
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let fetched = read();
        if index == 0 || fetched.index != index || tokio::time::Instant::now() >= deadline {
            return fetched;
        }
        tokio::time::sleep(POLL.min(wait)).await;
    }
}
