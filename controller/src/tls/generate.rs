//! `census tls ca create` and `census tls cert create`: a CA and agent certificates as Consul's
//! `consul tls` makes them (same file names), without an openssl binary.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

use super::TlsError;

fn fail(e: impl std::fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

fn write_new(path: &Path, text: &str) -> Result<(), TlsError> {
    if path.exists() {
        return Err(TlsError::Config(format!("{} already exists", path.display())));
    }
    std::fs::write(path, text).map_err(|e| TlsError::Read { path: path.into(), reason: e.to_string() })
}

/// The CA's name. `census tls cert create` rebuilds the issuer from it and the CA's key (reading
/// the CA certificate back would need an X.509 parser in the tree): certificates are signed by
/// CAs that `census tls ca create` made.
const CA_NAME: &str = "census Agent CA";

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// Writes `<domain>-agent-ca.pem` and `<domain>-agent-ca-key.pem` in `dir`.
pub fn create_ca(dir: &Path, domain: &str, days: u32) -> Result<(PathBuf, PathBuf), TlsError> {
    let key = KeyPair::generate().map_err(fail)?;
    let mut params = ca_params();
    validity(&mut params, days);
    let cert = params.self_signed(&key).map_err(fail)?;
    let (cert_path, key_path) =
        (dir.join(format!("{domain}-agent-ca.pem")), dir.join(format!("{domain}-agent-ca-key.pem")));
    write_new(&cert_path, &cert.pem())?;
    write_new(&key_path, &key.serialize_pem())?;
    Ok((cert_path, key_path))
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// Signs a certificate with the CA: a server's names `server.<dc>.<domain>` and `localhost`
/// (and 127.0.0.1), a client's `client.<dc>.<domain>`; both may act as TLS client and server,
/// as Consul's do. Written as `<dc>-<role>-<domain>-<n>.pem` and `…-key.pem`, `n` the first
/// free number.
pub struct CertRequest<'a> {
    pub dir: &'a Path,
    pub ca_file: &'a Path,
    pub ca_key_file: &'a Path,
    pub role: Role,
    pub datacenter: &'a str,
    pub domain: &'a str,
    pub days: u32,
    pub extra_dns: &'a [String],
    pub extra_ips: &'a [std::net::IpAddr],
}

pub fn create_cert(req: &CertRequest<'_>) -> Result<(PathBuf, PathBuf), TlsError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| TlsError::Read { path: p.into(), reason: e.to_string() })
    };
    let ca_key = KeyPair::from_pem(&read(req.ca_key_file)?).map_err(fail)?;
    if !read(req.ca_file)?.contains("BEGIN CERTIFICATE") {
        return Err(TlsError::NoCertificate { path: req.ca_file.into() });
    }
    let ca = ca_params().self_signed(&ca_key).map_err(fail)?;
    let role = match req.role {
        Role::Server => "server",
        Role::Client => "client",
    };
    let name = format!("{role}.{}.{}", req.datacenter, req.domain);
    let mut sans = vec![name.clone(), "localhost".to_string()];
    sans.extend(req.extra_dns.iter().cloned());
    let mut params = CertificateParams::new(sans).map_err(fail)?;
    params.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params.subject_alt_names.extend(req.extra_ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, req.days);
    let key = KeyPair::generate().map_err(fail)?;
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(fail)?;
    let prefix = format!("{}-{role}-{}", req.datacenter, req.domain);
    let n = (0..).find(|n| !req.dir.join(format!("{prefix}-{n}.pem")).exists()).unwrap_or(0);
    let (cert_path, key_path) =
        (req.dir.join(format!("{prefix}-{n}.pem")), req.dir.join(format!("{prefix}-{n}-key.pem")));
    write_new(&cert_path, &cert.pem())?;
    write_new(&key_path, &key.serialize_pem())?;
    Ok((cert_path, key_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{TlsSettings, client::client_config, server::server_config};

    #[test]
    fn a_ca_signs_server_certificates_that_rustls_accepts_both_ways() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, ca_key) = create_ca(dir.path(), "consul", 30).expect("ca");
        let req = CertRequest {
            dir: dir.path(),
            ca_file: &ca,
            ca_key_file: &ca_key,
            role: Role::Server,
            datacenter: "dc1",
            domain: "consul",
            days: 30,
            extra_dns: &[],
            extra_ips: &[],
        };
        let (cert, key) = create_cert(&req).expect("server cert");
        assert!(cert.ends_with("dc1-server-consul-0.pem"), "{}", cert.display());
        let (second, _) = create_cert(&req).expect("another");
        assert!(second.ends_with("dc1-server-consul-1.pem"));
        let settings = TlsSettings {
            ca_file: Some(ca),
            cert_file: Some(cert),
            key_file: Some(key),
            verify_incoming: true,
            verify_outgoing: true,
            verify_server_hostname: true,
        };
        server_config(&settings, &[b"h2"]).expect("server config");
        client_config(&settings, "server.dc1.consul", &[b"h2"]).expect("client config");
        assert!(create_ca(dir.path(), "consul", 30).is_err(), "an existing CA is never overwritten");
    }
}
