//! Probes: one run of a check, by kind, giving a status and the output Consul would record.

mod alias;
mod docker;
mod net;
mod os_service;
pub mod script;

use std::sync::Arc;
use std::time::Duration;

use crate::catalog::{Catalog, CheckKind, CheckSpec, CheckStatus};

/// Runs checks of this agent's node; holds the HTTP clients every check shares.
pub struct Prober {
    node: String,
    catalog: Arc<Catalog>,
    http: reqwest::Client,
    /// For `DisableRedirects` checks.
    http_no_redirects: reqwest::Client,
    /// For `TLSSkipVerify` checks of `https://` URLs (with and without redirects).
    http_insecure: reqwest::Client,
    http_insecure_no_redirects: reqwest::Client,
    grpc: reqwest::Client,
}

/// Follows redirects only to the same host and port (a check must not be bounced elsewhere).
fn same_host_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first =
            attempt.previous().first().map(|u| (u.host_str().map(str::to_string), u.port_or_known_default()));
        let next = (attempt.url().host_str().map(str::to_string), attempt.url().port_or_known_default());
        if attempt.previous().len() > 10 || first.as_ref() != Some(&next) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

impl Prober {
    pub fn new(node: String, catalog: Arc<Catalog>) -> Result<Prober, reqwest::Error> {
        Ok(Prober {
            node,
            catalog,
            http: reqwest::Client::builder().redirect(same_host_redirects()).build()?,
            http_no_redirects: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            http_insecure: reqwest::Client::builder()
                .redirect(same_host_redirects())
                .danger_accept_invalid_certs(true)
                .build()?,
            http_insecure_no_redirects: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .danger_accept_invalid_certs(true)
                .build()?,
            grpc: reqwest::Client::builder().http2_prior_knowledge().build()?,
        })
    }

    pub async fn probe(&self, spec: &CheckSpec) -> (CheckStatus, String) {
        let timeout = Duration::from_millis(spec.timeout_ms.max(1));
        match &spec.kind {
            CheckKind::Http { url, method, header, body, disable_redirects, tls_skip_verify, .. } => {
                let client = match (*tls_skip_verify, *disable_redirects) {
                    (false, false) => &self.http,
                    (false, true) => &self.http_no_redirects,
                    (true, false) => &self.http_insecure,
                    (true, true) => &self.http_insecure_no_redirects,
                };
                http(client, url, method, header, body, timeout).await
            }
            CheckKind::Tcp { address, .. } => net::tcp(address, timeout).await,
            CheckKind::Udp { address } => net::udp(address, timeout).await,
            CheckKind::H2Ping { address, .. } => net::h2ping(address, timeout).await,
            CheckKind::Grpc { address, service, .. } => {
                let (serving, output) =
                    census_client::grpc_health::check(&self.grpc, address, service, timeout).await;
                (if serving { CheckStatus::Passing } else { CheckStatus::Critical }, output)
            }
            CheckKind::Script { args } => script::run(args, timeout).await,
            CheckKind::Docker { container_id, args, .. } => docker::exec(container_id, args, timeout).await,
            CheckKind::Alias { node, service } => {
                let node = if node.is_empty() { self.node.as_str() } else { node.as_str() };
                self.catalog.read(|s| alias::health(s, node, service))
            }
            CheckKind::OsService { name } => os_service::state(name, timeout).await,
            CheckKind::Ttl { .. } | CheckKind::Recorded => (CheckStatus::Critical, String::new()),
        }
    }
}

/// 2xx passing, 429 warning, anything else (or no answer) critical.
async fn http(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    header: &std::collections::BTreeMap<String, Vec<String>>,
    body: &str,
    timeout: Duration,
) -> (CheckStatus, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method.clone(), url).timeout(timeout);
    for (name, values) in header {
        for v in values {
            req = req.header(name.as_str(), v.as_str());
        }
    }
    if !body.is_empty() {
        req = req.body(body.to_string());
    }
    match req.send().await {
        Ok(resp) => {
            let code = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let status = if code.is_success() {
                CheckStatus::Passing
            } else if code.as_u16() == 429 {
                CheckStatus::Warning
            } else {
                CheckStatus::Critical
            };
            (status, format!("HTTP {method} {url}: {code} Output: {text}"))
        }
        Err(e) => (CheckStatus::Critical, format!("HTTP {method} {url}: {e}")),
    }
}
