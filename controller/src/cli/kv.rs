//! `census kv get|put|delete|export|import`.

use std::io::Read;

use base64::Engine;
use census_client::{KvWriteOptions, QueryOptions};
use clap::Subcommand;

use super::{CliError, Format, HttpArgs};

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Print a key's value (or, with -recurse, every key under a prefix).
    Get {
        key: String,
        #[arg(long)]
        recurse: bool,
        /// List keys only.
        #[arg(long)]
        keys: bool,
        #[arg(long, default_value = "/")]
        separator: String,
        /// Show the key's metadata.
        #[arg(long)]
        detailed: bool,
    },
    /// Write a value; VALUE "-" reads standard input, "@file" reads a file.
    Put {
        key: String,
        value: Option<String>,
        /// Write only if the key's ModifyIndex equals -modify-index (0: only if absent).
        #[arg(long)]
        cas: bool,
        #[arg(long, value_name = "N")]
        modify_index: Option<u64>,
        #[arg(long, value_name = "N")]
        flags: Option<u64>,
        /// VALUE is base64.
        #[arg(long)]
        base64: bool,
    },
    /// Delete a key (or, with -recurse, a prefix).
    Delete {
        key: String,
        #[arg(long)]
        recurse: bool,
        #[arg(long)]
        cas: bool,
        #[arg(long, value_name = "N")]
        modify_index: Option<u64>,
    },
    /// Print every key under PREFIX (default: all) as JSON that `kv import` reads.
    Export { prefix: Option<String> },
    /// Write the keys of an export: DATA is "-" (standard input, the default), "@file" or the JSON.
    Import {
        data: Option<String>,
        /// Put every key under this prefix.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

fn read_value(value: Option<String>, b64: bool) -> Result<Vec<u8>, CliError> {
    let raw = match value.as_deref() {
        None => Vec::new(),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|source| CliError::File { path: "stdin".into(), source })?;
            buf
        }
        Some(v) if v.starts_with('@') => {
            std::fs::read(&v[1..]).map_err(|source| CliError::File { path: v[1..].to_string(), source })?
        }
        Some(v) => v.as_bytes().to_vec(),
    };
    if b64 {
        return base64::engine::general_purpose::STANDARD
            .decode(raw.trim_ascii())
            .map_err(|e| CliError::Usage(format!("value is not base64: {e}")));
    }
    Ok(raw)
}

fn cas_index(cas: bool, modify_index: Option<u64>) -> Result<Option<u64>, CliError> {
    match (cas, modify_index) {
        (true, Some(i)) => Ok(Some(i)),
        (true, None) => Err(CliError::Usage("Must specify -modify-index with -cas!".into())),
        (false, _) => Ok(None),
    }
}

pub async fn run(http: &HttpArgs, command: KvCommand) -> Result<i32, CliError> {
    let client = http.client()?;
    match command {
        KvCommand::Get { key, recurse, keys, separator, detailed } => {
            if keys {
                for k in client.kv_keys(&key, Some(&separator)).await? {
                    println!("{k}");
                }
                return Ok(0);
            }
            let pairs = if recurse {
                client.kv_list(&key, &QueryOptions::default()).await?.0
            } else {
                match client.kv_get(&key, &QueryOptions::default()).await?.0 {
                    Some(p) => vec![p],
                    None => {
                        eprintln!("Error! No key exists at: {key}");
                        return Ok(1);
                    }
                }
            };
            if http.format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&pairs).unwrap_or_default());
                return Ok(0);
            }
            for pair in pairs {
                let value = pair.decoded_value().unwrap_or_default();
                let text = String::from_utf8_lossy(&value);
                if detailed {
                    println!("CreateIndex      {}", pair.create_index);
                    println!("Flags            {}", pair.flags);
                    println!("Key              {}", pair.key);
                    println!("LockIndex        {}", pair.lock_index);
                    println!("ModifyIndex      {}", pair.modify_index);
                    println!("Session          {}", pair.session.as_deref().unwrap_or("-"));
                    println!("Value            {text}");
                } else if recurse {
                    println!("{}:{text}", pair.key);
                } else {
                    println!("{text}");
                }
            }
            Ok(0)
        }
        KvCommand::Put { key, value, cas, modify_index, flags, base64 } => {
            let bytes = read_value(value, base64)?;
            let opts = KvWriteOptions { flags, cas: cas_index(cas, modify_index)? };
            if client.kv_put(&key, &bytes, opts).await? {
                println!("Success! Data written to: {key}");
                Ok(0)
            } else {
                eprintln!("Error! Did not write to {key}: CAS failed");
                Ok(1)
            }
        }
        KvCommand::Export { prefix } => {
            println!("{}", super::kv_transfer::export(&client, prefix.as_deref().unwrap_or("")).await?);
            Ok(0)
        }
        KvCommand::Import { data, prefix } => {
            let entries = super::kv_transfer::read_entries(data.as_deref().unwrap_or("-"))?;
            let count = super::kv_transfer::import(&client, &prefix, &entries).await?;
            println!("Imported: {count} keys");
            Ok(0)
        }
        KvCommand::Delete { key, recurse, cas, modify_index } => {
            if client.kv_delete(&key, recurse, cas_index(cas, modify_index)?).await? {
                println!("Success! Deleted key{}: {key}", if recurse { "s under" } else { "" });
                Ok(0)
            } else {
                eprintln!("Error! Did not delete key {key}: CAS failed");
                Ok(1)
            }
        }
    }
}
