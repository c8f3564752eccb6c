//! `census kv export` and `census kv import`, in Consul's format: a JSON array of
//! `{"key", "flags", "value"}` with base64 values.

use std::io::Read;

use base64::Engine;
use census_client::{Client, KvWriteOptions, QueryOptions};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::CliError;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub key: String,
    pub flags: u64,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

/// Operations per transaction, and the body size a batch stays under (the agent takes 512 KiB).
const TXN_OPS: usize = 64;
const TXN_BYTES: usize = 384 * 1024;

/// The export of every key under `prefix`, tab-indented as Consul prints it.
pub async fn export(client: &Client, prefix: &str) -> Result<String, CliError> {
    let pairs = client.kv_list(prefix, &QueryOptions::default()).await?.0;
    let entries: Vec<Entry> = pairs
        .into_iter()
        .map(|p| Entry {
            key: p.key,
            flags: p.flags,
            value: p.value.unwrap_or_default(),
            namespace: None,
            partition: None,
        })
        .collect();
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    entries.serialize(&mut ser).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Reads an export from `data` ("-" standard input, "@file" a file, else the JSON itself).
pub fn read_entries(data: &str) -> Result<Vec<Entry>, CliError> {
    let raw = match data {
        "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|source| CliError::File { path: "stdin".into(), source })?;
            buf
        }
        file if file.starts_with('@') => std::fs::read(&file[1..])
            .map_err(|source| CliError::File { path: file[1..].to_string(), source })?,
        json => json.as_bytes().to_vec(),
    };
    let entries: Vec<Entry> =
        serde_json::from_slice(&raw).map_err(|e| CliError::Usage(format!("Cannot unmarshal data: {e}")))?;
    for entry in &entries {
        base64::engine::general_purpose::STANDARD
            .decode(&entry.value)
            .map_err(|e| CliError::Usage(format!("{}: value is not base64: {e}", entry.key)))?;
    }
    Ok(entries)
}

/// Writes every entry (under `prefix`), in transactions of up to 64 keys; returns how many.
pub async fn import(client: &Client, prefix: &str, entries: &[Entry]) -> Result<usize, CliError> {
    let mut batch: Vec<serde_json::Value> = Vec::new();
    let mut batch_bytes = 0;
    for entry in entries {
        let key = format!("{prefix}{}", entry.key);
        if entry.value.len() > TXN_BYTES {
            let value = base64::engine::general_purpose::STANDARD.decode(&entry.value).unwrap_or_default();
            client.kv_put(&key, &value, KvWriteOptions { flags: Some(entry.flags), cas: None }).await?;
            continue;
        }
        if batch.len() == TXN_OPS || batch_bytes + entry.value.len() + key.len() > TXN_BYTES {
            send_txn(client, &mut batch).await?;
            batch_bytes = 0;
        }
        batch_bytes += entry.value.len() + key.len() + 64;
        batch.push(serde_json::json!({"KV": {"Verb": "set", "Key": key, "Value": entry.value, "Flags": entry.flags}}));
    }
    send_txn(client, &mut batch).await?;
    Ok(entries.len())
}

async fn send_txn(client: &Client, batch: &mut Vec<serde_json::Value>) -> Result<(), CliError> {
    if batch.is_empty() {
        return Ok(());
    }
    let body = serde_json::to_vec(&batch).map_err(|e| CliError::Usage(e.to_string()))?;
    batch.clear();
    let (status, _, answer) = client.raw(Method::PUT, "/v1/txn", &[], Some(body), None).await?;
    if !status.is_success() {
        return Err(CliError::Usage(format!(
            "Error! The agent refused the import ({status}): {}",
            String::from_utf8_lossy(&answer).trim()
        )));
    }
    Ok(())
}
