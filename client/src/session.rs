//! Sessions (`/v1/session/*`) and KV locks (`?acquire=`, `?release=`): wire types and calls.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientError, QueryMeta, QueryOptions, Result, decode, encode_segment, kv_path};
use crate::duration::GoDuration;

/// `PUT /v1/session/create` body. Absent fields take Consul's defaults (this agent's node,
/// `serfHealth`, 15 s lock-delay, `release`, no TTL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SessionRequest {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_delay: Option<LockDelay>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub behavior: String,
    #[serde(rename = "TTL", skip_serializing_if = "String::is_empty")]
    pub ttl: String,
    /// Deprecated spelling of `NodeChecks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_checks: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_checks: Option<Vec<ServiceCheckRef>>,
}

/// Consul reads `LockDelay` as a duration string, or a number: seconds below 1000, else nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LockDelay {
    #[default]
    Unset,
    Number(u64),
    Text(GoDuration),
}

impl LockDelay {
    pub fn duration(self) -> Option<Duration> {
        match self {
            LockDelay::Unset => None,
            LockDelay::Number(n) if n < 1000 => Some(Duration::from_secs(n)),
            LockDelay::Number(n) => Some(Duration::from_nanos(n)),
            LockDelay::Text(d) => Some(d.0),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceCheckRef {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
}

/// A session as `info`, `list`, `node` and `renew` answer it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SessionEntry {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub node: String,
    /// Nanoseconds.
    pub lock_delay: u64,
    pub behavior: String,
    #[serde(rename = "TTL")]
    pub ttl: String,
    pub checks: Vec<String>,
    pub node_checks: Vec<String>,
    pub service_checks: Option<Vec<ServiceCheckRef>>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SessionId {
    #[serde(rename = "ID")]
    id: String,
}

impl Client {
    /// `PUT /v1/session/create`; the new session's ID.
    pub async fn session_create(&self, req: &SessionRequest) -> Result<String> {
        let bytes = self.put_json("/v1/session/create", &[], req).await?;
        decode::<SessionId>(&bytes).map(|s| s.id)
    }

    /// `PUT /v1/session/destroy/:id`.
    pub async fn session_destroy(&self, id: &str) -> Result<bool> {
        let bytes = self.put_empty(&format!("/v1/session/destroy/{}", encode_segment(id)), &[]).await?;
        decode(&bytes)
    }

    /// `PUT /v1/session/renew/:id`; `None` when the session no longer exists.
    pub async fn session_renew(&self, id: &str) -> Result<Option<SessionEntry>> {
        match self.put_empty(&format!("/v1/session/renew/{}", encode_segment(id)), &[]).await {
            Ok(bytes) => Ok(decode::<Vec<SessionEntry>>(&bytes)?.pop()),
            Err(ClientError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/session/info/:id`.
    pub async fn session_info(
        &self,
        id: &str,
        opts: &QueryOptions,
    ) -> Result<(Option<SessionEntry>, QueryMeta)> {
        let path = format!("/v1/session/info/{}", encode_segment(id));
        let (mut sessions, meta) = self.query::<Option<Vec<SessionEntry>>>(&path, &[], opts).await?;
        Ok((sessions.as_mut().and_then(Vec::pop), meta))
    }

    /// `GET /v1/session/list`.
    pub async fn session_list(&self, opts: &QueryOptions) -> Result<(Vec<SessionEntry>, QueryMeta)> {
        let (sessions, meta) = self.query::<Option<Vec<SessionEntry>>>("/v1/session/list", &[], opts).await?;
        Ok((sessions.unwrap_or_default(), meta))
    }

    /// `PUT /v1/kv/:key?acquire=`: whether this session now holds the lock.
    pub async fn kv_acquire(
        &self,
        key: &str,
        session: &str,
        value: &[u8],
        flags: Option<u64>,
    ) -> Result<bool> {
        self.kv_lock_call(key, "acquire", session, value, flags).await
    }

    /// `PUT /v1/kv/:key?release=`: whether the lock was this session's and is now free.
    pub async fn kv_release(
        &self,
        key: &str,
        session: &str,
        value: &[u8],
        flags: Option<u64>,
    ) -> Result<bool> {
        self.kv_lock_call(key, "release", session, value, flags).await
    }

    async fn kv_lock_call(
        &self,
        key: &str,
        verb: &str,
        session: &str,
        value: &[u8],
        flags: Option<u64>,
    ) -> Result<bool> {
        let mut params = vec![(verb, session.to_string())];
        if let Some(flags) = flags {
            params.push(("flags", flags.to_string()));
        }
        let (_, bytes) = self.call(Method::PUT, &kv_path(key), &params, Some(value.to_vec()), None).await?;
        decode(&bytes)
    }
}
