//! The accepting side: a rustls server config from the settings (asking for and checking client
//! certificates with `verify_incoming`), swapped whole when the files are read again, and a
//! listener for axum that completes each handshake off the accept loop.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{TlsError, TlsSettings, provider, read_certificates, read_key, roots};

/// How long a peer may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn server_config(settings: &TlsSettings, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Err(TlsError::Config("a TLS listener needs cert_file and key_file".into()));
    };
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (&settings.ca_file, settings.verify_incoming) {
        (Some(ca), true) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(read_certificates(cert_file)?, read_key(key_file)?)
        .map_err(|e| TlsError::Config(format!("{}: {e}", cert_file.display())))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A server config that `reload` replaces; new connections use the newest.
#[derive(Clone)]
pub struct ReloadableServer {
    settings: TlsSettings,
    alpn: Vec<Vec<u8>>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl ReloadableServer {
    pub fn new(settings: TlsSettings, alpn: &[&[u8]]) -> Result<ReloadableServer, TlsError> {
        let current = Arc::new(RwLock::new(server_config(&settings, alpn)?));
        Ok(ReloadableServer { settings, alpn: alpn.iter().map(|p| p.to_vec()).collect(), current })
    }

    /// Reads the files again; on an error the old certificates stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let alpn: Vec<&[u8]> = self.alpn.iter().map(Vec::as_slice).collect();
        let fresh = server_config(&self.settings, &alpn)?;
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
        Ok(())
    }

    fn acceptor(&self) -> Option<TlsAcceptor> {
        self.current.read().ok().map(|c| TlsAcceptor::from(c.clone()))
    }
}

/// A TCP listener whose connections are TLS streams (failed handshakes are dropped).
pub struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, tls: ReloadableServer) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, accepted) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                if tx.is_closed() {
                    return;
                }
                let Some(acceptor) = tls.acceptor() else { continue };
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
