//! consul-template's own config file (HCL or JSON) read as `census-sidecar render` settings, so a
//! consul-template config runs as written: `consul { address token }`, `template { source
//! destination command left_delimiter right_delimiter error_on_missing_key }`, `exec { command
//! reload_signal kill_signal }`, `wait { min max }` (or `wait = "min:max"`). Settings census does
//! not act on (`max_stale`, `perms`, `backup`, ...) are accepted with a warning; any other key is
//! an error naming it, as census' config files are strict.

pub use census_hcl as hcl;

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::cli::{RenderFile, TemplateFile};
use crate::render::template::Language;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Hcl(#[from] hcl::HclError),
    #[error("{key}: unknown setting")]
    Unknown { key: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// Whether a JSON config is consul-template's rather than census' own (`consul_addr`,
/// `templates`): it has a `consul` or `template` section, or `exec`/`wait` as objects.
pub fn is_consul_template_json(doc: &Value) -> bool {
    doc.get("consul").is_some()
        || doc.get("template").is_some()
        || doc.get("exec").is_some_and(Value::is_object)
        || doc.get("wait").is_some_and(Value::is_object)
}

/// Settings consul-template has and census accepts without acting on them.
const IGNORED: &[&str] = &[
    "max_stale",
    "deduplicate",
    "log_level",
    "pid_file",
    "syslog",
    "kill_signal",
    "reload_signal",
    "vault",
    "retry",
    "ssl",
    "auth",
    "namespace",
    "transport",
    "sandbox_path",
    "function_denylist",
    "function_blacklist",
    "splay",
    "env",
    "timeout",
    "uid",
    "gid",
    "user",
    "group",
    "block_query_wait",
    "default_delimiters",
    "log_file",
    "template_error_fatal",
    "once",
];

fn ignore(section: &str, key: &str) {
    tracing::warn!("consul-template setting {section}{key} is accepted but has no effect in census-sidecar");
}

fn section<'a>(name: &str, value: &'a Value) -> Result<&'a Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| ConfigError::Invalid { key: name.into(), reason: "expected a block".into() })
}

fn text(key: &str, value: &Value) -> Result<String, ConfigError> {
    value
        .as_str()
        .map(String::from)
        .ok_or_else(|| ConfigError::Invalid { key: key.into(), reason: "expected a string".into() })
}

/// A command given as a string (run by a shell) or a list of words (quoted for one).
fn command(key: &str, value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(words) => {
            let words: Vec<String> = words.iter().map(|w| text(key, w)).collect::<Result<_, _>>()?;
            Ok(words.iter().map(|w| format!("'{}'", w.replace('\'', "'\\''"))).collect::<Vec<_>>().join(" "))
        }
        _ => Err(ConfigError::Invalid {
            key: key.into(),
            reason: "expected a string or a list of strings".into(),
        }),
    }
}

fn wait(value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Object(m) => {
            let min = m.get("min").map(|v| text("wait.min", v)).transpose()?;
            let max = m.get("max").map(|v| text("wait.max", v)).transpose()?;
            if let Some(key) = m.keys().find(|k| !["min", "max", "enabled"].contains(&k.as_str())) {
                return Err(ConfigError::Unknown { key: format!("wait.{key}") });
            }
            match (min, max) {
                (Some(min), Some(max)) => Ok(format!("{min}:{max}")),
                (Some(min), None) => Ok(min),
                _ => Err(ConfigError::Invalid { key: "wait".into(), reason: "needs min".into() }),
            }
        }
        _ => Err(ConfigError::Invalid {
            key: "wait".into(),
            reason: "expected \"min:max\" or { min max }".into(),
        }),
    }
}

fn template(block: &Value) -> Result<TemplateFile, ConfigError> {
    let block = section("template", block)?;
    let mut file = TemplateFile {
        source: PathBuf::new(),
        destination: PathBuf::new(),
        command: None,
        language: None,
        left_delimiter: None,
        right_delimiter: None,
        error_on_missing_key: false,
        perms: None,
        backup: false,
        contents: None,
        wait: None,
        command_timeout: None,
    };
    for (key, value) in block {
        let name = format!("template.{key}");
        match key.as_str() {
            "source" => file.source = text(&name, value)?.into(),
            "destination" => file.destination = text(&name, value)?.into(),
            "command" => file.command = Some(command(&name, value)?),
            "left_delimiter" => file.left_delimiter = Some(text(&name, value)?),
            "right_delimiter" => file.right_delimiter = Some(text(&name, value)?),
            "error_on_missing_key" => {
                file.error_on_missing_key = value.as_bool().ok_or_else(|| ConfigError::Invalid {
                    key: name.clone(),
                    reason: "expected true or false".into(),
                })?;
            }
            "perms" => {
                crate::cli::file_mode(value).ok_or_else(|| ConfigError::Invalid {
                    key: name.clone(),
                    reason: "expected a file mode such as 0644".into(),
                })?;
                file.perms = Some(value.clone());
            }
            "backup" => {
                file.backup = value.as_bool().ok_or_else(|| ConfigError::Invalid {
                    key: name.clone(),
                    reason: "expected true or false".into(),
                })?;
            }
            // census-sidecar always creates missing directories on the way to a destination.
            "create_dest_dirs" => {}
            "contents" => file.contents = Some(text(&name, value)?),
            "wait" if value.get("enabled") == Some(&Value::Bool(false)) => file.wait = None,
            "wait" => file.wait = Some(wait(value)?),
            "command_timeout" => file.command_timeout = Some(text(&name, value)?),
            other if IGNORED.contains(&other) => ignore("template.", other),
            _ => return Err(ConfigError::Unknown { key: name }),
        }
    }
    if file.source.as_os_str().is_empty() == file.contents.is_none()
        || file.destination.as_os_str().is_empty()
    {
        return Err(ConfigError::Invalid {
            key: "template".into(),
            reason: "needs destination and either source or contents".into(),
        });
    }
    // consul-template's files are Go templates whatever their names.
    file.language = Some(Language::Go);
    Ok(file)
}

/// consul-template's config (already read into JSON) as census' render settings.
pub fn render_file(doc: &Value) -> Result<RenderFile, ConfigError> {
    let top = section("config", doc)?;
    let mut file = RenderFile::default();
    for (key, value) in top {
        match key.as_str() {
            "consul" => {
                for (k, v) in section("consul", value)? {
                    match k.as_str() {
                        "address" => file.consul_addr = Some(text("consul.address", v)?),
                        "token" => file.token = Some(text("consul.token", v)?),
                        other if IGNORED.contains(&other) => ignore("consul.", other),
                        other => return Err(ConfigError::Unknown { key: format!("consul.{other}") }),
                    }
                }
            }
            "template" => {
                let blocks = match value {
                    Value::Array(blocks) => blocks.iter().collect(),
                    block => vec![block],
                };
                for block in blocks {
                    file.templates.push(template(block)?);
                }
            }
            "exec" => {
                for (k, v) in section("exec", value)? {
                    match k.as_str() {
                        "command" => file.exec = Some(command("exec.command", v)?),
                        "reload_signal" => file.exec_reload_signal = Some(text("exec.reload_signal", v)?),
                        "kill_signal" => file.exec_kill_signal = Some(text("exec.kill_signal", v)?),
                        other if IGNORED.contains(&other) || other == "kill_timeout" => {
                            ignore("exec.", other)
                        }
                        other => return Err(ConfigError::Unknown { key: format!("exec.{other}") }),
                    }
                }
            }
            "wait" => file.wait = Some(wait(value)?),
            other if IGNORED.contains(&other) => ignore("", other),
            other => return Err(ConfigError::Unknown { key: other.into() }),
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consul_template_hcl_config_becomes_render_settings() {
        let text = r#"
consul { address = "10.0.0.1:8500" token = "t" }
max_stale = "10m"
wait { min = "2s" max = "10s" }
exec {
  command = ["nginx", "-g", "daemon off;"]
  reload_signal = "SIGHUP"
  kill_signal = "SIGQUIT"
}
template {
  source = "in.html"
  destination = "out.html"
  command = "nginx -s reload"
  perms = 0644
  left_delimiter = "[["
  right_delimiter = "]]"
}
"#;
        let file = render_file(&hcl::parse(text).expect("hcl")).expect("settings");
        assert_eq!(file.consul_addr.as_deref(), Some("10.0.0.1:8500"));
        assert_eq!(file.wait.as_deref(), Some("2s:10s"));
        assert_eq!(file.exec.as_deref(), Some("'nginx' '-g' 'daemon off;'"));
        assert_eq!(file.exec_kill_signal.as_deref(), Some("SIGQUIT"));
        let t = &file.templates[0];
        assert_eq!((t.language, t.left_delimiter.as_deref()), (Some(Language::Go), Some("[[")));
        assert_eq!(t.command.as_deref(), Some("nginx -s reload"));
        assert_eq!(t.perms.as_ref().and_then(crate::cli::file_mode), Some(0o644));
    }

    #[test]
    fn unknown_and_unsupported_settings_are_named() {
        let err = render_file(&serde_json::json!({"consul": {"adress": "x"}})).expect_err("typo");
        assert_eq!(err.to_string(), "consul.adress: unknown setting");
        let doc = serde_json::json!({"template": {"destination": "o", "contents": "x", "source": "s"}});
        assert!(render_file(&doc).expect_err("both").to_string().contains("either source or contents"));
        let doc = serde_json::json!({"template": {"destination": "o", "contents": "{{ key \"k\" }}", "wait": {"min": "1s"}}});
        let t = &render_file(&doc).expect("inline").templates[0];
        assert_eq!((t.contents.as_deref(), t.wait.as_deref()), (Some("{{ key \"k\" }}"), Some("1s")));
        assert!(is_consul_template_json(&serde_json::json!({"template": []})));
        assert!(!is_consul_template_json(&serde_json::json!({"consul_addr": "x", "exec": "nginx"})));
    }
}
