//! TLS as Consul configures it (`tls { defaults, internal_rpc, https }`, and the older top-level
//! `ca_file`, `cert_file`, `key_file`, `verify_*`): the HTTPS API, and mutual TLS on the Raft port
//! between servers and from client agents, with server certificates bound to
//! `server.<datacenter>.<domain>`. Certificates come from PEM files, read again on SIGHUP; `census
//! tls` makes a CA and certificates (`generate`).

pub mod client;
pub mod generate;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS: cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("TLS: {path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("TLS: {0}")]
    Config(String),
}

/// One listener's (or the outgoing side's) settings, `tls.defaults` overlaid by its own block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Require and check a client certificate signed by the CA.
    pub verify_incoming: bool,
    /// Check the certificate of the server this agent connects to against the CA.
    pub verify_outgoing: bool,
    /// Also require that server's certificate to name `server.<datacenter>.<domain>`.
    pub verify_server_hostname: bool,
}

impl TlsSettings {
    /// A certificate to present.
    pub fn has_certificate(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    /// Whether connections use TLS at all (a certificate, or a CA to check servers with).
    pub fn enabled(&self) -> bool {
        self.has_certificate() || self.ca_file.is_some()
    }

    /// Refuses settings that cannot work, as Consul does at start.
    pub fn check(&self, what: &str) -> Result<(), TlsError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(TlsError::Config(format!("{what}: cert_file and key_file go together")));
        }
        if (self.verify_incoming || self.verify_outgoing) && self.ca_file.is_none() {
            return Err(TlsError::Config(format!(
                "{what}: verify_incoming and verify_outgoing need a ca_file"
            )));
        }
        if self.verify_incoming && !self.has_certificate() {
            return Err(TlsError::Config(format!("{what}: verify_incoming needs cert_file and key_file")));
        }
        Ok(())
    }
}

/// The agent's TLS: the Raft port (`internal_rpc`) and the HTTPS API (`https`, on `ports.https`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub internal_rpc: TlsSettings,
    pub https: TlsSettings,
    /// `ports.https`: off unless set (Consul's default is off too; 8501 by convention).
    pub https_port: Option<u16>,
    /// `server.<datacenter>.<domain>`: the name server certificates must carry.
    pub server_name: String,
}

/// What SIGHUP reads again: the listeners' certificates and the client side of the server port.
#[derive(Clone, Default)]
pub struct Reloader {
    pub servers: Vec<server::ReloadableServer>,
    pub peers: Option<(crate::raft::network::PeerTransport, TlsSettings, String)>,
}

impl Reloader {
    /// Reads every certificate file again; on an error nothing changes and the error says why.
    pub fn reload(&self) -> Result<usize, TlsError> {
        let peers = match &self.peers {
            Some((transport, settings, name)) => {
                Some((transport, client::client_config(settings, name, &[b"h2"])?))
            }
            None => None,
        };
        for server in &self.servers {
            server.reload()?;
        }
        if let Some((transport, config)) = peers {
            transport.replace_tls(config).map_err(|e| TlsError::Config(e.to_string()))?;
        }
        Ok(self.servers.len() + usize::from(self.peers.is_some()))
    }
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Read { path: path.into(), reason: e.to_string() })?
        .collect();
    let certs = certs.map_err(|e| TlsError::Read { path: path.into(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsError::Read { path: path.into(), reason: e.to_string() })
}

fn roots(ca_file: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates(ca_file)? {
        roots.add(cert).map_err(|e| TlsError::Config(format!("{}: {e}", ca_file.display())))?;
    }
    Ok(roots)
}
