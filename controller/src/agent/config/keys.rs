//! Checking a config document against the table of Consul's keys (table.rs): each key is read,
//! accepted with a warning that it has no effect, or refused because census cannot honour a
//! security setting. A key Consul does not know is an error, as in Consul
//! (`invalid config key foo`).

use serde_json::{Map, Value};

use Rule::{Block, Inert, Refused, Used};

/// What census does with one config key.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Read by census (its sub-keys, if any, are the reader's business: maps of user names).
    Used,
    /// An object whose keys are checked against this table.
    Block(&'static [(&'static str, Rule)]),
    /// Accepted; when it sets something, a warning says it has no effect in census.
    Inert,
    /// Refused when it turns something on, because census cannot do it and ignoring it would
    /// leave the agent less secure than its operator asked for. The text says why.
    Refused(&'static str),
}

/// What checking one config source found, keys spelled with dots (`ports.grpc`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Keys Consul does not know.
    pub unknown: Vec<String>,
    /// Keys that set something census does not do.
    pub inert: Vec<String>,
    /// Security settings census cannot honour, with the reason.
    pub refused: Vec<(String, &'static str)>,
}

/// Whether a value asks for something: `true`, a positive number, a non-empty string, list or
/// object. `false`, `0`, `-1` (Consul's "off" for ports), `""`, `[]`, `{}` and `null` do not.
pub fn sets_something(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f > 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Checks an object against `rules`; keys are reported in name order, as Consul reports them.
pub fn check(object: &Map<String, Value>, rules: &[(&str, Rule)]) -> Findings {
    let mut findings = Findings::default();
    walk(object, rules, "", &mut findings);
    findings
}

fn walk(object: &Map<String, Value>, rules: &[(&str, Rule)], prefix: &str, out: &mut Findings) {
    for (key, value) in object {
        let path = format!("{prefix}{key}");
        match rules.iter().find(|(name, _)| name == key).map(|(_, rule)| *rule) {
            None => out.unknown.push(path),
            Some(Used) => {}
            Some(Block(sub)) => {
                // A block of the wrong type is reported by the typed decoding that follows.
                if let Value::Object(inner) = value {
                    walk(inner, sub, &format!("{path}."), out);
                }
            }
            Some(Inert) => {
                if sets_something(value) {
                    out.inert.push(path);
                }
            }
            Some(Refused(why)) => {
                if sets_something(value) {
                    out.refused.push((path, why));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::config::table::TOP_LEVEL;

    fn findings(json: &str) -> Findings {
        let value: Value = serde_json::from_str(json).expect("json");
        check(value.as_object().expect("object"), TOP_LEVEL)
    }

    #[test]
    fn the_table_is_sorted_and_has_no_duplicates() {
        let names: Vec<&str> = TOP_LEVEL.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn unknown_keys_are_named_with_their_block() {
        let f = findings(r#"{"foo": 1, "ports": {"http": 8500, "htttp": 1}, "dns_config": {"ttl": "1s"}}"#);
        assert_eq!(f.unknown, ["dns_config.ttl", "foo", "ports.htttp"]);
        assert!(f.inert.is_empty() && f.refused.is_empty());
    }

    #[test]
    fn inert_keys_are_reported_only_when_they_set_something() {
        let f = findings(
            r#"{"disable_update_check": true, "log_json": false, "ports": {"grpc": 8502, "https": -1},
                "performance": {"raft_multiplier": 3, "leave_drain_time": "5s"}, "telemetry": {"x": 1}}"#,
        );
        assert_eq!(
            f.inert,
            ["disable_update_check", "performance.leave_drain_time", "ports.grpc", "telemetry"]
        );
        assert!(f.unknown.is_empty() && f.refused.is_empty());
    }

    #[test]
    fn security_settings_are_refused_only_when_turned_on() {
        let f = findings(
            r#"{"acl": {"enabled": true, "default_policy": "deny"}, "encrypt": "c2VjcmV0",
                "verify_incoming": true, "verify_outgoing": false,
                "tls": {"defaults": {"cert_file": "/x.pem", "tls_min_version": "TLSv1_2"}}}"#,
        );
        let refused: Vec<&str> = f.refused.iter().map(|(k, _)| k.as_str()).collect();
        // Gossip encryption, ACLs and TLS from files are served: read, not refused.
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(f.inert, ["tls.defaults.tls_min_version"]);
        let f = findings(r#"{"tls": {"defaults": {"ca_path": "/etc/ca"}, "grpc": {"cert_file": "/x.pem"}}}"#);
        let refused: Vec<&str> = f.refused.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(refused, ["tls.defaults.ca_path", "tls.grpc.cert_file"]);
        let off = findings(r#"{"acl": {"enabled": false}, "encrypt": "", "verify_incoming": false}"#);
        assert_eq!(off, Findings::default());
    }
}
