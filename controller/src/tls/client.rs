//! The connecting side: a rustls client config that checks the server's certificate against the
//! CA (`verify_outgoing`) and, with `verify_server_hostname`, that it names
//! `server.<datacenter>.<domain>` whatever address was dialled (servers are reached by IP);
//! it presents the agent's own certificate when it has one.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{TlsError, TlsSettings, provider, read_certificates, read_key, roots};

/// Checks the chain, and the server name Consul's servers carry instead of the dialled host.
#[derive(Debug)]
struct ServerNameVerifier {
    inner: Arc<WebPkiServerVerifier>,
    /// `Some(name)`: the certificate must be valid for it; `None`: the chain is enough.
    name: Option<ServerName<'static>>,
}

impl ServerCertVerifier for ServerNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        dialled: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let name = self.name.as_ref().unwrap_or(dialled);
        match self.inner.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
            Err(Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. }))
                if self.name.is_none() =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client config for connections to servers (`server_name`: `server.<dc>.<domain>`).
pub fn client_config(
    settings: &TlsSettings,
    server_name: &str,
    alpn: &[&[u8]],
) -> Result<ClientConfig, TlsError> {
    let Some(ca) = &settings.ca_file else {
        return Err(TlsError::Config("connecting with TLS needs a ca_file to check servers with".into()));
    };
    let provider = provider();
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let name = if settings.verify_server_hostname {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| TlsError::Config(format!("server name {server_name:?}: {e}")))?;
        Some(name)
    } else {
        None
    };
    let verifier = Arc::new(ServerNameVerifier { inner, name });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certificates(cert)?, read_key(key)?)
            .map_err(|e| TlsError::Config(format!("{}: {e}", cert.display())))?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}
