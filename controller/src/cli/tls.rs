//! `census tls ca create` and `census tls cert create`, as `consul tls` names them and its files.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CliError;
use crate::tls::generate::{CertRequest, Role, create_ca, create_cert};

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make a certificate authority.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Make an agent certificate signed by the CA.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    Create {
        #[arg(long, default_value = "consul")]
        domain: String,
        #[arg(long, default_value_t = 1825)]
        days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    Create(CertArgs),
}

#[derive(Debug, Args)]
pub struct CertArgs {
    /// A server certificate (`server.<dc>.<domain>`).
    #[arg(long)]
    pub server: bool,
    /// A client certificate (`client.<dc>.<domain>`), for client agents and tools.
    #[arg(long)]
    pub client: bool,
    #[arg(long, default_value = "dc1")]
    pub dc: String,
    #[arg(long, default_value = "consul")]
    pub domain: String,
    #[arg(long, default_value = "consul-agent-ca.pem")]
    pub ca: PathBuf,
    #[arg(long, default_value = "consul-agent-ca-key.pem")]
    pub key: PathBuf,
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Another DNS name the certificate is valid for (repeatable).
    #[arg(long = "additional-dnsname")]
    pub dns_names: Vec<String>,
    /// Another IP address the certificate is valid for (repeatable).
    #[arg(long = "additional-ipaddress")]
    pub ips: Vec<IpAddr>,
}

pub fn run(command: TlsCommand) -> Result<i32, CliError> {
    let here = std::env::current_dir().map_err(|source| CliError::File { path: ".".into(), source })?;
    let failed = |e: crate::tls::TlsError| CliError::Usage(e.to_string());
    match command {
        TlsCommand::Ca { command: CaCommand::Create { domain, days } } => {
            let (cert, key) = create_ca(&here, &domain, days).map_err(failed)?;
            println!("==> Saved {}", cert.display());
            println!("==> Saved {}", key.display());
        }
        TlsCommand::Cert { command: CertCommand::Create(args) } => {
            let role = match (args.server, args.client) {
                (true, false) => Role::Server,
                (false, true) => Role::Client,
                _ => return Err(CliError::Usage("give exactly one of -server and -client".into())),
            };
            let req = CertRequest {
                dir: &here,
                ca_file: &args.ca,
                ca_key_file: &args.key,
                role,
                datacenter: &args.dc,
                domain: &args.domain,
                days: args.days,
                extra_dns: &args.dns_names,
                extra_ips: &args.ips,
            };
            let (cert, key) = create_cert(&req).map_err(failed)?;
            println!("==> Saved {}", cert.display());
            println!("==> Saved {}", key.display());
        }
    }
    Ok(0)
}
