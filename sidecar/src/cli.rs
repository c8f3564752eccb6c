//! `census-sidecar` flags (consul-template's spellings, single dash accepted) and the JSON config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nix::sys::signal::Signal;
use serde::Deserialize;

use crate::consul_template_config;
use crate::render::gotemplate::GoOptions;
use crate::render::output::FileOptions;
use crate::render::output::Validation;
use crate::render::template::{Language, TemplateError, TemplateSpec, Wait};
use crate::render::{self, RenderError, RenderSettings};

#[derive(Debug, Parser)]
#[command(name = "census-sidecar", version, about = "census sidecars: render templates, register containers")]
pub struct Cli {
    #[arg(long, global = true, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: SidecarCommand,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum SidecarCommand {
    /// Keep files (an nginx config) rendered from the catalog, validated before every reload.
    Render(RenderArgs),
    /// Keep a pod's or a Docker host's containers registered, with health and a lease (registrator).
    Register(crate::register::RegisterArgs),
    /// A read-only allow-list proxy in front of the Docker socket, for `register --platform docker`.
    DockerProxy(DockerProxyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DockerProxyArgs {
    /// Where to listen (IP:PORT); point the register sidecar's DOCKER_HOST at tcp://THIS.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:2375")]
    pub listen: String,
    /// The Docker engine's socket.
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    pub socket: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NginxCheck {
    /// The destination is a conf.d fragment: test it inside a minimal `http {}` block.
    Fragment,
    /// The destination is a whole nginx.conf: `nginx -t -c` on it.
    Config,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RenderArgs {
    /// SRC:DEST[:COMMAND] — a template (Go/consul-template for .ctmpl, .tmpl, .tpl; handlebars
    /// otherwise), its output, and a command to run after a change (repeatable).
    #[arg(long, value_name = "SRC:DEST[:COMMAND]")]
    pub template: Vec<String>,
    /// Quiescence MIN[:MAX]: render after no change for MIN, at the latest MAX after the first.
    #[arg(long, value_name = "MIN[:MAX]")]
    pub wait: Option<String>,
    /// Render every template once and exit (0 when all were written or already current).
    #[arg(long)]
    pub once: bool,
    /// The census (or Consul) agent; default $CENSUS_HTTP_ADDR, $CONSUL_HTTP_ADDR, 127.0.0.1:8500.
    #[arg(long, value_name = "ADDR")]
    pub consul_addr: Option<String>,
    /// ACL token sent as X-Consul-Token (default $CONSUL_HTTP_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// A config file: census' JSON (see README) or consul-template's own (HCL or JSON); flags
    /// override it. Repeatable; a directory reads its files in name order, later ones over earlier.
    #[arg(long, value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Validate each candidate with this shell command; `{}` is the candidate's path.
    #[arg(long, value_name = "CMD")]
    pub check: Option<String>,
    /// Validate with `nginx -t`: `fragment` for a conf.d file, `config` for a whole nginx.conf.
    #[arg(long, value_name = "KIND")]
    pub nginx_check: Option<NginxCheck>,
    /// The nginx binary for -nginx-check.
    #[arg(long, value_name = "PATH")]
    pub nginx_bin: Option<String>,
    /// Reload by SIGHUP to the pid in this file (nginx's master), for templates without a COMMAND.
    #[arg(long, value_name = "PATH")]
    pub nginx_pid: Option<PathBuf>,
    /// Refuse to render while a `service` has fewer instances than this (keep the last good file).
    #[arg(long, value_name = "N")]
    pub min_instances: Option<usize>,
    /// Where /healthz and /metrics listen ("off" to disable; default 0.0.0.0:9090, none with -once).
    #[arg(long, value_name = "ADDR")]
    pub status_addr: Option<String>,
    /// Start this command after the first render and supervise it: SIGHUP on changes (for
    /// templates without a COMMAND), signals forwarded, its exit ends the sidecar.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// The signal -exec's command gets after a change (default SIGHUP).
    #[arg(long, value_name = "SIGNAL")]
    pub exec_reload_signal: Option<String>,
    /// The signal -exec's command gets when the sidecar stops (default: the one the sidecar got).
    #[arg(long, value_name = "SIGNAL")]
    pub exec_kill_signal: Option<String>,
    /// Print each new output to stdout (`> DEST`, then the text) instead of writing it; nothing is
    /// validated or reloaded (consul-template's -dry).
    #[arg(long)]
    pub dry: bool,
    /// Let Go templates' `plugin` run commands (off by default).
    #[arg(long)]
    pub enable_plugins: bool,
    /// Write the sidecar's pid to this file (consul-template's -pid-file).
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// consul-template's -max-stale: accepted so its command lines run; census reads are
    /// consistent through the agent (a warning says it has no effect).
    #[arg(long, value_name = "DURATION")]
    pub max_stale: Option<String>,
}

/// The `-config` file: the same settings, as JSON.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderFile {
    pub consul_addr: Option<String>,
    pub token: Option<String>,
    pub wait: Option<String>,
    pub check: Option<String>,
    pub nginx_check: Option<NginxCheck>,
    pub nginx_bin: Option<String>,
    pub nginx_pid: Option<PathBuf>,
    pub min_instances: Option<usize>,
    pub status_addr: Option<String>,
    pub exec: Option<String>,
    pub exec_reload_signal: Option<String>,
    pub exec_kill_signal: Option<String>,
    pub templates: Vec<TemplateFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateFile {
    #[serde(default)]
    pub source: PathBuf,
    /// The template's text inline (consul-template's `contents`), instead of `source`.
    #[serde(default)]
    pub contents: Option<String>,
    pub destination: PathBuf,
    #[serde(default)]
    pub command: Option<String>,
    /// `go` or `handlebars`; by default from the source's extension.
    #[serde(default)]
    pub language: Option<Language>,
    /// Go templates: consul-template's `left_delimiter`, `right_delimiter`, `error_on_missing_key`.
    #[serde(default)]
    pub left_delimiter: Option<String>,
    #[serde(default)]
    pub right_delimiter: Option<String>,
    #[serde(default)]
    pub error_on_missing_key: bool,
    /// The file's mode: octal digits ("0600") or a number.
    #[serde(default)]
    pub perms: Option<serde_json::Value>,
    /// Keep the replaced file as DEST.bak.
    #[serde(default)]
    pub backup: bool,
    /// This template's own quiescence, `MIN[:MAX]` (consul-template's per-template `wait`).
    #[serde(default)]
    pub wait: Option<String>,
    /// How long `command` may run before it is killed, e.g. "30s" (the default).
    #[serde(default)]
    pub command_timeout: Option<String>,
}

impl RenderFile {
    /// `later` over `self`, as consul-template merges its config files: settings it gives
    /// replace these, its templates are added.
    fn merge(&mut self, later: RenderFile) {
        macro_rules! over {
            ($($field:ident),*) => { $( if later.$field.is_some() { self.$field = later.$field; } )* };
        }
        over!(
            consul_addr,
            token,
            wait,
            check,
            nginx_check,
            nginx_bin,
            nginx_pid,
            min_instances,
            status_addr,
            exec,
            exec_reload_signal,
            exec_kill_signal
        );
        self.templates.extend(later.templates);
    }
}

/// A file mode as consul-template takes it: "0644" (octal) or a number.
pub fn file_mode(value: &serde_json::Value) -> Option<u32> {
    match value {
        serde_json::Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    }
    .filter(|mode| *mode <= 0o7777)
}

impl TemplateFile {
    fn spec(&self) -> Result<TemplateSpec, CliError> {
        let inline = self.contents.is_some();
        if inline != self.source.as_os_str().is_empty() {
            return Err(CliError::Invalid(format!(
                "template for {}: give either source or contents",
                self.destination.display()
            )));
        }
        // An inline template is named after its destination in errors.
        let source = match inline {
            true => PathBuf::from(format!("(contents of the template for {})", self.destination.display())),
            false => self.source.clone(),
        };
        let mut spec = TemplateSpec::new(source, self.destination.clone(), self.command.clone());
        spec.contents = self.contents.clone();
        if let Some(language) = self.language {
            spec.language = language;
        } else if inline {
            spec.language = Language::Go;
        }
        spec.wait = self.wait.as_deref().map(str::parse).transpose()?;
        if let Some(timeout) = &self.command_timeout {
            spec.command_timeout = census_client::parse_duration(timeout).map_err(|_| {
                CliError::Invalid(format!(
                    "template for {}: command_timeout {timeout:?} is not a duration",
                    self.destination.display()
                ))
            })?;
        }
        spec.go = GoOptions {
            left_delimiter: self.left_delimiter.clone(),
            right_delimiter: self.right_delimiter.clone(),
            error_on_missing_key: self.error_on_missing_key,
            plugins: false,
        };
        let perms = match &self.perms {
            None => None,
            Some(value) => Some(file_mode(value).ok_or_else(|| {
                CliError::Invalid(format!(
                    "template {}: perms {value} is not a file mode",
                    self.source.display()
                ))
            })?),
        };
        spec.file = FileOptions { perms, backup: self.backup };
        Ok(spec)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Register(#[from] crate::register::RegisterError),
    #[error(transparent)]
    Proxy(#[from] crate::register::docker::proxy::ProxyError),
}

/// Reads every `-config` in order, later over earlier; a directory's files in name order.
fn read_configs(paths: &[PathBuf]) -> Result<RenderFile, CliError> {
    let mut merged = RenderFile::default();
    for path in paths {
        if path.is_dir() {
            let listing = std::fs::read_dir(path)
                .map_err(|e| CliError::Config { path: path.clone(), reason: e.to_string() })?;
            let mut files: Vec<PathBuf> =
                listing.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
            files.sort();
            for file in files {
                merged.merge(read_file(&file)?);
            }
        } else {
            merged.merge(read_file(path)?);
        }
    }
    Ok(merged)
}

/// Reads census' JSON config, or consul-template's own config (HCL, or JSON with its sections).
fn read_file(path: &PathBuf) -> Result<RenderFile, CliError> {
    let fail = |reason: String| CliError::Config { path: path.clone(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(doc) => doc,
        Err(json_error) => {
            let is_hcl = path.extension().is_some_and(|e| e == "hcl") || !text.trim_start().starts_with('{');
            if !is_hcl {
                return Err(fail(json_error.to_string()));
            }
            let doc = consul_template_config::hcl::parse(&text).map_err(|e| fail(e.to_string()))?;
            return consul_template_config::render_file(&doc).map_err(|e| fail(e.to_string()));
        }
    };
    if consul_template_config::is_consul_template_json(&doc) {
        return consul_template_config::render_file(&doc).map_err(|e| fail(e.to_string()));
    }
    serde_json::from_value(doc).map_err(|e| fail(e.to_string()))
}

impl RenderArgs {
    /// Flags over the config file over the environment over defaults.
    pub fn settings(&self) -> Result<RenderSettings, CliError> {
        let file = read_configs(&self.config)?;
        let mut templates: Vec<TemplateSpec> =
            file.templates.iter().map(TemplateFile::spec).collect::<Result<_, _>>()?;
        for t in &self.template {
            templates.push(t.parse()?);
        }
        for spec in &mut templates {
            spec.go.plugins = self.enable_plugins;
        }
        if templates.is_empty() {
            return Err(CliError::Invalid("at least one -template SRC:DEST[:COMMAND] is required".into()));
        }
        let wait = self.wait.clone().or(file.wait).map(|w| w.parse::<Wait>()).transpose()?;
        let client = crate::process::agent_client(
            self.consul_addr.clone().or(file.consul_addr),
            self.token.clone().or(file.token),
        )
        .map_err(|e| CliError::Invalid(e.to_string()))?;
        let nginx = self.nginx_bin.clone().or(file.nginx_bin).unwrap_or_else(|| "nginx".into());
        let validation = match (self.check.clone().or(file.check), self.nginx_check.or(file.nginx_check)) {
            (Some(_), Some(_)) => {
                return Err(CliError::Invalid("-check and -nginx-check exclude each other".into()));
            }
            (Some(cmd), None) => Validation::Command(cmd),
            (None, Some(NginxCheck::Fragment)) => Validation::NginxFragment { nginx },
            (None, Some(NginxCheck::Config)) => Validation::NginxConfig { nginx },
            (None, None) => Validation::None,
        };
        let status_addr = match self.status_addr.clone().or(file.status_addr).as_deref() {
            Some("off") => None,
            Some(a) => Some(
                a.parse::<SocketAddr>()
                    .map_err(|_| CliError::Invalid(format!("-status-addr {a:?} is not IP:PORT")))?,
            ),
            // `-once` serves /healthz only when asked to (an init container waiting for a key).
            None if self.once => None,
            None => Some(SocketAddr::from(([0, 0, 0, 0], 9090))),
        };
        if self.max_stale.is_some() {
            tracing::warn!("-max-stale is accepted for consul-template's command lines but has no effect");
        }
        if let Some(path) = &self.pid_file {
            std::fs::write(path, format!("{}\n", std::process::id()))
                .map_err(|e| CliError::Invalid(format!("-pid-file {}: {e}", path.display())))?;
        }
        let reload_signal = self.exec_reload_signal.clone().or(file.exec_reload_signal);
        let kill_signal = self.exec_kill_signal.clone().or(file.exec_kill_signal);
        Ok(RenderSettings {
            exec_reload_signal: reload_signal.as_deref().map(signal).transpose()?.unwrap_or(Signal::SIGHUP),
            exec_kill_signal: kill_signal.as_deref().map(signal).transpose()?,
            dry: self.dry,
            client,
            templates,
            wait,
            once: self.once,
            validation,
            reload_pid_file: self.nginx_pid.clone().or(file.nginx_pid),
            min_instances: self.min_instances.or(file.min_instances).unwrap_or(0),
            status_addr,
            exec: self
                .exec
                .clone()
                .or(file.exec)
                .map(|c| crate::render::exec::split_command(&c))
                .transpose()
                .map_err(|e| CliError::Invalid(e.to_string()))?,
        })
    }
}

/// A signal by name: `SIGHUP`, `HUP` or `hup`.
fn signal(name: &str) -> Result<Signal, CliError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    full.parse::<Signal>().map_err(|_| CliError::Invalid(format!("unknown signal {name:?}")))
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        SidecarCommand::Render(args) => Ok(render::run(args.settings()?).await?),
        SidecarCommand::Register(args) => Ok(crate::register::run(args).await?),
        SidecarCommand::DockerProxy(args) => {
            Ok(crate::register::docker::proxy::serve(&args.listen, args.socket).await?)
        }
    }
}
