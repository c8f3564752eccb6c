//! `census lock -n N`: a semaphore with Consul's layout, so `consul lock -n` and census processes
//! can share one. Each contender holds `PREFIX/<session>` with its session; `PREFIX/.lock` holds
//! `{"Limit": N, "Holders": {"<session>": true}}`, changed only with check-and-set. Holders whose
//! contender key is gone or unlocked (their session ended) are pruned by whoever writes next.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use census_client::types::KvPair;
use census_client::{Client, ClientError, KvWriteOptions, QueryOptions};
use serde::{Deserialize, Serialize};

use super::CliError;

/// The flags Consul's semaphore writes on its keys.
const SEMAPHORE_FLAG: u64 = 0xe0f6_9a2b_aa41_4de0;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SlotTable {
    #[serde(rename = "Limit")]
    limit: u32,
    #[serde(rename = "Holders", default)]
    holders: BTreeMap<String, bool>,
}

#[derive(Debug, Clone)]
pub struct Semaphore {
    prefix: String,
    session: String,
}

impl Semaphore {
    fn lock_key(&self) -> String {
        format!("{}/.lock", self.prefix)
    }

    fn contender_key(&self) -> String {
        format!("{}/{}", self.prefix, self.session)
    }

    /// The slot table as it stands, its ModifyIndex (0 if absent), and the live contenders.
    fn read(&self, pairs: &[KvPair], limit: u32) -> Result<(SlotTable, u64, BTreeSet<String>), CliError> {
        let lock_key = self.lock_key();
        let (table, cas) = match pairs.iter().find(|p| p.key == lock_key) {
            Some(p) => {
                let bytes = p.decoded_value().map_err(|e| CliError::Usage(format!("{lock_key}: {e}")))?;
                let table: SlotTable = serde_json::from_slice(&bytes)
                    .map_err(|e| CliError::Usage(format!("{lock_key} is not a semaphore: {e}")))?;
                (table, p.modify_index)
            }
            None => (SlotTable { limit, holders: BTreeMap::new() }, 0),
        };
        let live = pairs
            .iter()
            .filter_map(|p| {
                let session = p.key.strip_prefix(&format!("{}/", self.prefix))?;
                (p.session.as_deref() == Some(session)).then(|| session.to_string())
            })
            .collect();
        Ok((table, cas, live))
    }

    pub async fn acquire(
        client: &Client,
        prefix: &str,
        session: &str,
        limit: u32,
    ) -> Result<Semaphore, CliError> {
        let me = Semaphore { prefix: prefix.trim_end_matches('/').to_string(), session: session.to_string() };
        if !client.kv_acquire(&me.contender_key(), session, b"", Some(SEMAPHORE_FLAG)).await? {
            return Err(CliError::Usage(format!("could not create contender entry {}", me.contender_key())));
        }
        let mut index = 0;
        loop {
            let opts = QueryOptions::blocking(index, Duration::from_secs(60));
            let (pairs, meta) = client.kv_list(&format!("{}/", me.prefix), &opts).await?;
            let (mut table, cas, live) = me.read(&pairs, limit)?;
            if table.limit != limit {
                return Err(CliError::Usage(format!(
                    "semaphore limit conflict (lock: {}, local: {limit})",
                    table.limit
                )));
            }
            table.holders.retain(|holder, _| live.contains(holder));
            if table.holders.len() < limit as usize {
                table.holders.insert(session.to_string(), true);
                let body = serde_json::to_vec(&table).map_err(|e| CliError::Usage(e.to_string()))?;
                let opts = KvWriteOptions { flags: Some(SEMAPHORE_FLAG), cas: Some(cas) };
                if client.kv_put(&me.lock_key(), &body, opts).await? {
                    return Ok(me);
                }
                // Someone else changed the table first: read it again at once.
                index = 0;
                continue;
            }
            index = meta.last_index;
        }
    }

    /// Returns when this session no longer holds a slot (or its contender key is gone).
    pub async fn watch(&self, client: &Client) {
        let mut index = 0;
        loop {
            let opts = QueryOptions::blocking(index, Duration::from_secs(60));
            match client.kv_list(&format!("{}/", self.prefix), &opts).await {
                Ok((pairs, meta)) => match self.read(&pairs, 0) {
                    Ok((table, _, live))
                        if table.holders.contains_key(&self.session) && live.contains(&self.session) =>
                    {
                        index = meta.last_index;
                    }
                    _ => return,
                },
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Gives the slot back and removes the contender entry.
    pub async fn release(&self, client: &Client) -> Result<(), ClientError> {
        for _ in 0..20 {
            let (pairs, _) = client.kv_list(&format!("{}/", self.prefix), &QueryOptions::default()).await?;
            let Ok((mut table, cas, _)) = self.read(&pairs, 0) else { break };
            if table.holders.remove(&self.session).is_none() {
                break;
            }
            let Ok(body) = serde_json::to_vec(&table) else { break };
            let opts = KvWriteOptions { flags: Some(SEMAPHORE_FLAG), cas: Some(cas) };
            if client.kv_put(&self.lock_key(), &body, opts).await? {
                break;
            }
        }
        client.kv_delete(&self.contender_key(), false, None).await.map(drop)
    }
}
