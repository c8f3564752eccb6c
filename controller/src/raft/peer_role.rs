//! Which Raft-port routes a peer may call, by the certificate it presented. A client agent's
//! certificate comes from the same CA as a server's, so with mutual TLS alone any client agent
//! could append entries, vote, install a snapshot over the catalog or forward any write as if it
//! were a server. With `verify_incoming` and `verify_server_hostname` (as Consul authorizes its
//! server connections), only a certificate valid for `server.<dc>.<domain>` reaches the
//! servers' routes; client agents keep the routes they need (sync, DNS, ACL lookups, joining).

use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::tls::server::TlsListener;

/// The routes a client agent calls; every other route of the Raft port is for servers only.
pub const AGENT_ROUTES: [&str; 5] = ["/raft/write", "/raft/dns", "/raft/acl", "/raft/members", "/raft/whois"];

/// The certificate a connection presented, with whether it names a server (decided on the
/// connection's first request, then kept).
#[derive(Clone, Debug)]
pub struct PeerCertificate(Arc<(Option<CertificateDer<'static>>, OnceLock<bool>)>);

impl PeerCertificate {
    pub fn new(leaf: Option<CertificateDer<'static>>) -> PeerCertificate {
        PeerCertificate(Arc::new((leaf, OnceLock::new())))
    }

    /// Whether the certificate is valid for `server_name` (the CA was checked by the handshake).
    pub fn names_server(&self, server_name: &ServerName<'static>) -> bool {
        let (leaf, verdict) = &*self.0;
        *verdict.get_or_init(|| {
            leaf.as_ref().is_some_and(|der| {
                webpki::EndEntityCert::try_from(der)
                    .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(server_name).is_ok())
            })
        })
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, TlsListener>> for PeerCertificate {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> PeerCertificate {
        let (_, session) = stream.io().get_ref();
        let leaf =
            session.peer_certificates().and_then(|chain| chain.first()).map(|c| c.clone().into_owned());
        PeerCertificate::new(leaf)
    }
}

/// Refuses a server-only route to a peer whose certificate does not name a server.
pub async fn require_server_certificate(
    State(server_name): State<Arc<ServerName<'static>>>,
    ConnectInfo(peer): ConnectInfo<PeerCertificate>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if AGENT_ROUTES.contains(&path) || peer.names_server(&server_name) {
        return next.run(request).await;
    }
    let wanted = server_name.to_str();
    tracing::warn!(
        route = path,
        %wanted,
        "refused a server route to a peer whose certificate does not name a server"
    );
    let message = format!("{path} is for servers: the peer's certificate is not valid for {wanted}");
    (StatusCode::FORBIDDEN, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::generate::{CertRequest, Role, create_ca, create_cert};

    /// A certificate `census tls cert create` makes for `role` in dc1.
    fn leaf(dir: &std::path::Path, role: Role) -> CertificateDer<'static> {
        let (ca_file, ca_key_file) = match create_ca(dir, "consul", 30) {
            Ok(paths) => paths,
            Err(_) => (dir.join("consul-agent-ca.pem"), dir.join("consul-agent-ca-key.pem")),
        };
        let req = CertRequest {
            dir,
            ca_file: &ca_file,
            ca_key_file: &ca_key_file,
            role,
            datacenter: "dc1",
            domain: "consul",
            days: 30,
            extra_dns: &[],
            extra_ips: &[],
        };
        let (cert, _) = create_cert(&req).expect("certificate");
        crate::tls::read_certificates(&cert).expect("read").remove(0)
    }

    fn name(text: &str) -> ServerName<'static> {
        ServerName::try_from(text.to_string()).expect("name")
    }

    #[test]
    fn only_a_server_certificate_of_this_datacenter_names_the_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = leaf(dir.path(), Role::Server);
        let client = leaf(dir.path(), Role::Client);
        assert!(PeerCertificate::new(Some(server.clone())).names_server(&name("server.dc1.consul")));
        assert!(!PeerCertificate::new(Some(server)).names_server(&name("server.dc2.consul")));
        assert!(!PeerCertificate::new(Some(client)).names_server(&name("server.dc1.consul")));
        assert!(!PeerCertificate::new(None).names_server(&name("server.dc1.consul")));
    }
}
