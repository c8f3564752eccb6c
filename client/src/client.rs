//! An async Consul HTTP client with blocking queries, for the CLI, the sidecars and tests.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::duration::format_duration;
use crate::types::{
    AgentSelf, AgentService, AgentServiceRegistration, CatalogService, HealthCheck, KvPair, Member, Node,
    RaftConfiguration, ServiceEntry,
};

/// What went wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid agent address {0:?}")]
    Address(String),
    #[error("cannot reach the agent at {addr}: {source}")]
    Transport { addr: String, source: reqwest::Error },
    #[error("Unexpected response code: {status} ({body})")]
    Status { status: u16, body: String },
    #[error("cannot decode the agent's answer: {0}")]
    Decode(String),
    #[error("TLS: {0}")]
    Tls(String),
}

/// TLS to an agent's HTTPS port, as Consul's tools take it: `CONSUL_CACERT`,
/// `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`, `CONSUL_HTTP_SSL_VERIFY=false`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub ca_file: Option<std::path::PathBuf>,
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
    pub skip_verify: bool,
}

impl TlsOptions {
    pub fn from_env() -> TlsOptions {
        let path = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
        TlsOptions {
            ca_file: path("CONSUL_CACERT"),
            cert_file: path("CONSUL_CLIENT_CERT"),
            key_file: path("CONSUL_CLIENT_KEY"),
            skip_verify: std::env::var("CONSUL_HTTP_SSL_VERIFY").is_ok_and(|v| v == "false" || v == "0"),
        }
    }

    fn apply(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| ClientError::Tls(format!("{}: {e}", p.display())))
        };
        if let Some(ca) = &self.ca_file {
            for cert in reqwest::Certificate::from_pem_bundle(&read(ca)?)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", ca.display())))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = read(cert)?;
                pem.extend(read(key)?);
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| ClientError::Tls(format!("{}: {e}", cert.display())))?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err(ClientError::Tls("a client certificate needs both its file and its key".into())),
        }
        Ok(builder.danger_accept_invalid_certs(self.skip_verify))
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Read consistency, as the `?stale` / `?consistent` query flags choose it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    #[default]
    Default,
    Stale,
    Consistent,
}

/// Options of a read: blocking (`index`, `wait`) and consistency.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub index: u64,
    pub wait: Option<Duration>,
    pub consistency: Consistency,
}

impl QueryOptions {
    pub fn blocking(index: u64, wait: Duration) -> Self {
        QueryOptions { index, wait: Some(wait), ..Default::default() }
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        if self.index > 0 {
            params.push(("index", self.index.to_string()));
        }
        if let Some(wait) = self.wait {
            params.push(("wait", format_duration(wait)));
        }
        match self.consistency {
            Consistency::Default => {}
            Consistency::Stale => params.push(("stale", String::new())),
            Consistency::Consistent => params.push(("consistent", String::new())),
        }
        params
    }
}

/// What the agent said about a read: `X-Consul-Index`, `X-Consul-KnownLeader`, `X-Consul-LastContact`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryMeta {
    pub last_index: u64,
    pub known_leader: bool,
    pub last_contact_ms: u64,
}

/// Options of a KV write.
#[derive(Debug, Clone, Copy, Default)]
pub struct KvWriteOptions {
    pub flags: Option<u64>,
    pub cas: Option<u64>,
}

/// A handle on one agent's HTTP API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    /// Applied to requests that set no timeout of their own (blocking queries set theirs).
    default_timeout: Option<Duration>,
}

impl Client {
    /// `addr` is `host:port` or a URL (`http://host:port`).
    pub fn new(addr: &str) -> Result<Self> {
        Client::with_tls(addr, &TlsOptions::default())
    }

    /// A client of an agent's HTTPS (or HTTP) address with these TLS files.
    pub fn with_tls(addr: &str, tls: &TlsOptions) -> Result<Self> {
        let base = if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.trim_end_matches('/').to_string()
        } else if addr.is_empty() {
            return Err(ClientError::Address(addr.to_string()));
        } else {
            format!("http://{}", addr.trim_end_matches('/'))
        };
        let builder = tls.apply(reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(90)))?;
        let http = builder.build().map_err(|source| ClientError::Transport { addr: base.clone(), source })?;
        Ok(Client { base, http, token: None, default_timeout: None })
    }

    /// The address from `CENSUS_HTTP_ADDR`, else `CONSUL_HTTP_ADDR`, else `127.0.0.1:8500`.
    /// With `CONSUL_HTTP_SSL=true` a bare `host:port` is reached over HTTPS; the TLS files come
    /// from `TlsOptions::from_env`.
    pub fn from_env() -> Result<Self> {
        let addr = std::env::var("CENSUS_HTTP_ADDR")
            .or_else(|_| std::env::var("CONSUL_HTTP_ADDR"))
            .unwrap_or_else(|_| "127.0.0.1:8500".to_string());
        let ssl = std::env::var("CONSUL_HTTP_SSL").is_ok_and(|v| v == "true" || v == "1");
        let addr = if ssl && !addr.contains("://") { format!("https://{addr}") } else { addr };
        let mut client = Client::with_tls(&addr, &TlsOptions::from_env())?;
        client.token =
            std::env::var("CENSUS_HTTP_TOKEN").or_else(|_| std::env::var("CONSUL_HTTP_TOKEN")).ok();
        Ok(client)
    }

    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Gives up on requests without a timeout of their own after `timeout` (writers that must
    /// notice an unreachable agent quickly).
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path` carrying the token, if any.
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => req.header("X-Consul-Token", token),
            None => req,
        }
    }

    /// Sends one request and returns status, headers and body bytes, whatever the status.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>)> {
        let mut req = self.request(method, path);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if !params.is_empty() {
            req = req.query(&params);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        if let Some(timeout) = timeout.or(self.default_timeout) {
            req = req.timeout(timeout);
        }
        let transport = |source| ClientError::Transport { addr: self.base.clone(), source };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?;
        Ok((status, headers, bytes.to_vec()))
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<(reqwest::header::HeaderMap, Vec<u8>)> {
        let (status, headers, bytes) = self.raw(method, path, params, body, timeout).await?;
        if !status.is_success() {
            return Err(status_error(status, &bytes));
        }
        Ok((headers, bytes))
    }

    /// A blocking-capable GET, whatever the status.
    async fn get_query(
        &self,
        path: &str,
        extra: &[(&str, String)],
        opts: &QueryOptions,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>)> {
        let mut params: Vec<(&str, String)> = extra.to_vec();
        params.extend(opts.params());
        // Leave room for the server's wait plus its jitter (wait/16) before timing out.
        let timeout = opts.wait.map(|w| w + w / 16 + Duration::from_secs(5));
        self.raw(Method::GET, path, &params, None, timeout).await
    }

    /// A blocking-capable GET that decodes JSON and returns the query meta.
    pub async fn query<T: DeserializeOwned>(
        &self,
        path: &str,
        extra: &[(&str, String)],
        opts: &QueryOptions,
    ) -> Result<(T, QueryMeta)> {
        let (status, headers, bytes) = self.get_query(path, extra, opts).await?;
        if !status.is_success() {
            return Err(status_error(status, &bytes));
        }
        Ok((decode(&bytes)?, query_meta(&headers)))
    }

    /// `query`, except that a 404 (missing key, empty listing) is `None` with the index the
    /// agent sent along, so a blocking query can wait for the key to appear.
    pub async fn query_optional<T: DeserializeOwned>(
        &self,
        path: &str,
        extra: &[(&str, String)],
        opts: &QueryOptions,
    ) -> Result<(Option<T>, QueryMeta)> {
        let (status, headers, bytes) = self.get_query(path, extra, opts).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok((None, query_meta(&headers)));
        }
        if !status.is_success() {
            return Err(status_error(status, &bytes));
        }
        Ok((Some(decode(&bytes)?), query_meta(&headers)))
    }

    /// A request without body or parameters; the body of a 2xx answer, else the status error.
    pub async fn raw_call(&self, method: Method, path: &str) -> Result<Vec<u8>> {
        Ok(self.call(method, path, &[], None, None).await?.1)
    }

    pub(crate) async fn put_json<B: Serialize>(
        &self,
        path: &str,
        params: &[(&str, String)],
        body: &B,
    ) -> Result<Vec<u8>> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        let (_, bytes) = self.call(Method::PUT, path, params, Some(body), None).await?;
        Ok(bytes)
    }

    pub(crate) async fn put_empty(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<u8>> {
        let (_, bytes) = self.call(Method::PUT, path, params, None, None).await?;
        Ok(bytes)
    }

    // ---- KV

    /// `GET /v1/kv/:key`; `None` when the key does not exist.
    pub async fn kv_get(&self, key: &str, opts: &QueryOptions) -> Result<(Option<KvPair>, QueryMeta)> {
        let (pairs, meta) = self.query_optional::<Vec<KvPair>>(&kv_path(key), &[], opts).await?;
        Ok((pairs.and_then(|mut p| p.pop()), meta))
    }

    /// `GET /v1/kv/:prefix?recurse`; empty when nothing is under the prefix.
    pub async fn kv_list(&self, prefix: &str, opts: &QueryOptions) -> Result<(Vec<KvPair>, QueryMeta)> {
        let (pairs, meta) =
            self.query_optional::<Vec<KvPair>>(&kv_path(prefix), &[("recurse", String::new())], opts).await?;
        Ok((pairs.unwrap_or_default(), meta))
    }

    /// `GET /v1/kv/:prefix?keys[&separator=]`.
    pub async fn kv_keys(&self, prefix: &str, separator: Option<&str>) -> Result<Vec<String>> {
        let mut params = vec![("keys", String::new())];
        if let Some(sep) = separator {
            params.push(("separator", sep.to_string()));
        }
        match self.query::<Vec<String>>(&kv_path(prefix), &params, &QueryOptions::default()).await {
            Ok((keys, _)) => Ok(keys),
            Err(ClientError::Status { status: 404, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `PUT /v1/kv/:key`; the server's `true`/`false`.
    pub async fn kv_put(&self, key: &str, value: &[u8], opts: KvWriteOptions) -> Result<bool> {
        let mut params = Vec::new();
        if let Some(flags) = opts.flags {
            params.push(("flags", flags.to_string()));
        }
        if let Some(cas) = opts.cas {
            params.push(("cas", cas.to_string()));
        }
        let (_, bytes) = self.call(Method::PUT, &kv_path(key), &params, Some(value.to_vec()), None).await?;
        decode(&bytes)
    }

    /// `DELETE /v1/kv/:key[?recurse][&cas=]`.
    pub async fn kv_delete(&self, key: &str, recurse: bool, cas: Option<u64>) -> Result<bool> {
        let mut params = Vec::new();
        if recurse {
            params.push(("recurse", String::new()));
        }
        if let Some(cas) = cas {
            params.push(("cas", cas.to_string()));
        }
        let (_, bytes) = self.call(Method::DELETE, &kv_path(key), &params, None, None).await?;
        decode(&bytes)
    }

    // ---- agent

    pub async fn agent_service_register(&self, reg: &AgentServiceRegistration) -> Result<()> {
        self.put_json("/v1/agent/service/register", &[], reg).await.map(drop)
    }

    pub async fn agent_service_deregister(&self, id: &str) -> Result<()> {
        self.put_empty(&format!("/v1/agent/service/deregister/{}", encode_segment(id)), &[]).await.map(drop)
    }

    pub async fn agent_services(&self) -> Result<std::collections::BTreeMap<String, AgentService>> {
        Ok(self.query("/v1/agent/services", &[], &QueryOptions::default()).await?.0)
    }

    pub async fn agent_members(&self) -> Result<Vec<Member>> {
        Ok(self.query("/v1/agent/members", &[], &QueryOptions::default()).await?.0)
    }

    pub async fn agent_self(&self) -> Result<AgentSelf> {
        Ok(self.query("/v1/agent/self", &[], &QueryOptions::default()).await?.0)
    }

    pub async fn agent_join(&self, addr: &str) -> Result<()> {
        self.put_empty(&format!("/v1/agent/join/{}", encode_segment(addr)), &[]).await.map(drop)
    }

    pub async fn agent_leave(&self) -> Result<()> {
        self.put_empty("/v1/agent/leave", &[]).await.map(drop)
    }

    /// `PUT /v1/agent/check/{pass,warn,fail}/:id?note=`.
    pub async fn agent_check_ttl(&self, verb: &str, id: &str, note: &str) -> Result<()> {
        let params = vec![("note", note.to_string())];
        self.put_empty(&format!("/v1/agent/check/{verb}/{}", encode_segment(id)), &params).await.map(drop)
    }

    /// `PUT /v1/agent/check/update/:id` with a status (`passing`, `warning`, `critical`) and output.
    pub async fn agent_check_update(&self, id: &str, status: &str, output: &str) -> Result<()> {
        let body = serde_json::json!({ "Status": status, "Output": output });
        self.put_json(&format!("/v1/agent/check/update/{}", encode_segment(id)), &[], &body).await.map(drop)
    }

    // ---- catalog and health

    pub async fn catalog_services(
        &self,
        opts: &QueryOptions,
    ) -> Result<(std::collections::BTreeMap<String, Vec<String>>, QueryMeta)> {
        self.query("/v1/catalog/services", &[], opts).await
    }

    pub async fn catalog_nodes(&self, opts: &QueryOptions) -> Result<(Vec<Node>, QueryMeta)> {
        self.query("/v1/catalog/nodes", &[], opts).await
    }

    pub async fn catalog_service(
        &self,
        name: &str,
        opts: &QueryOptions,
    ) -> Result<(Vec<CatalogService>, QueryMeta)> {
        self.query(&format!("/v1/catalog/service/{}", encode_segment(name)), &[], opts).await
    }

    pub async fn health_service(
        &self,
        name: &str,
        passing: bool,
        opts: &QueryOptions,
    ) -> Result<(Vec<ServiceEntry>, QueryMeta)> {
        let params = if passing { vec![("passing", String::new())] } else { Vec::new() };
        self.query(&format!("/v1/health/service/{}", encode_segment(name)), &params, opts).await
    }

    pub async fn health_state(
        &self,
        state: &str,
        opts: &QueryOptions,
    ) -> Result<(Vec<HealthCheck>, QueryMeta)> {
        self.query(&format!("/v1/health/state/{}", encode_segment(state)), &[], opts).await
    }

    // ---- status and operator

    pub async fn status_leader(&self) -> Result<String> {
        Ok(self.query("/v1/status/leader", &[], &QueryOptions::default()).await?.0)
    }

    pub async fn status_peers(&self) -> Result<Vec<String>> {
        Ok(self.query("/v1/status/peers", &[], &QueryOptions::default()).await?.0)
    }

    pub async fn raft_configuration(&self, stale: bool) -> Result<RaftConfiguration> {
        let opts = QueryOptions {
            consistency: if stale { Consistency::Stale } else { Consistency::Default },
            ..Default::default()
        };
        Ok(self.query("/v1/operator/raft/configuration", &[], &opts).await?.0)
    }

    /// `DELETE /v1/operator/raft/peer?address=` or `?id=`.
    pub async fn raft_remove_peer(&self, address: Option<&str>, id: Option<&str>) -> Result<()> {
        let mut params = Vec::new();
        if let Some(a) = address {
            params.push(("address", a.to_string()));
        }
        if let Some(i) = id {
            params.push(("id", i.to_string()));
        }
        self.call(Method::DELETE, "/v1/operator/raft/peer", &params, None, None).await.map(drop)
    }
}

pub(crate) fn status_error(status: StatusCode, body: &[u8]) -> ClientError {
    ClientError::Status { status: status.as_u16(), body: String::from_utf8_lossy(body).trim().to_string() }
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Decode(e.to_string()))
}

fn header_u64(headers: &reqwest::header::HeaderMap, name: &str) -> u64 {
    headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub(crate) fn query_meta(headers: &reqwest::header::HeaderMap) -> QueryMeta {
    QueryMeta {
        last_index: header_u64(headers, "X-Consul-Index"),
        known_leader: headers.get("X-Consul-KnownLeader").and_then(|v| v.to_str().ok()) == Some("true"),
        last_contact_ms: header_u64(headers, "X-Consul-LastContact"),
    }
}

/// Percent-encodes one path segment (keeps unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/v1/kv/<key>` with each `/`-separated part encoded and the slashes kept.
pub(crate) fn kv_path(key: &str) -> String {
    let encoded: Vec<String> = key.split('/').map(encode_segment).collect();
    format!("/v1/kv/{}", encoded.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_paths_keep_slashes_and_encode_the_rest() {
        assert_eq!(kv_path("web/config a"), "/v1/kv/web/config%20a");
        assert_eq!(kv_path("a?b"), "/v1/kv/a%3Fb");
    }

    #[test]
    fn addresses_accept_host_port_and_urls() {
        assert_eq!(Client::new("127.0.0.1:8500").expect("host:port").base_url(), "http://127.0.0.1:8500");
        assert_eq!(Client::new("http://a:1/").expect("url").base_url(), "http://a:1");
        assert!(Client::new("").is_err());
    }
}
