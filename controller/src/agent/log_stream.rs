//! The agent's log as a stream, for `GET /v1/agent/monitor`: a tracing layer that hands every
//! line the agent logs to whoever is watching, formatted as Consul formats its log
//! (`2026-11-30T20:13:19.123Z [INFO]  agent: Synced service 'web'`), or as JSON with `?logjson`.
//!
//! The subscriber is process-wide, so the stream is too. It carries what the agent logs at its
//! `-log-level`; a monitor may ask for less, not for more.

use std::fmt::Write as _;
use std::sync::OnceLock;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One logged line.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub level: Level,
    pub timestamp: String,
    pub target: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

impl LogLine {
    /// Consul's text format.
    pub fn text(&self) -> String {
        let level = match self.level {
            Level::TRACE => "TRACE",
            Level::DEBUG => "DEBUG",
            Level::INFO => "INFO",
            Level::WARN => "WARN",
            Level::ERROR => "ERROR",
        };
        let mut out = format!(
            "{} [{level}] {:<pad$}{}: {}",
            self.timestamp,
            "",
            self.target,
            self.message,
            pad = 5 - level.len()
        );
        for (k, v) in &self.fields {
            let _ = write!(out, " {k}={v}");
        }
        out.push('\n');
        out
    }

    /// Consul's `-log-json` format.
    pub fn json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("@timestamp".into(), self.timestamp.clone().into());
        map.insert("@level".into(), self.level.to_string().to_lowercase().into());
        map.insert("@module".into(), self.target.clone().into());
        map.insert("@message".into(), self.message.clone().into());
        for (k, v) in &self.fields {
            map.insert(k.clone(), v.clone().into());
        }
        format!("{}\n", serde_json::Value::Object(map))
    }
}

fn channel() -> &'static broadcast::Sender<LogLine> {
    static SENDER: OnceLock<broadcast::Sender<LogLine>> = OnceLock::new();
    SENDER.get_or_init(|| broadcast::channel(1024).0)
}

/// Lines logged from now on; a slow reader loses the oldest.
pub fn subscribe() -> broadcast::Receiver<LogLine> {
    channel().subscribe()
}

/// Consul's `?loglevel=` words.
pub fn parse_level(word: &str) -> Option<Level> {
    match word.to_ascii_lowercase().as_str() {
        "" | "info" => Some(Level::INFO),
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "warn" | "warning" => Some(Level::WARN),
        "err" | "error" => Some(Level::ERROR),
        _ => None,
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push((field.name().to_string(), format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push((field.name().to_string(), value.to_string()));
        }
    }
}

/// The layer to add to the agent's subscriber.
pub struct MonitorLayer;

impl<S: Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let sender = channel();
        if sender.receiver_count() == 0 {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let _ = sender.send(LogLine {
            level: *meta.level(),
            timestamp: timestamp(),
            target: meta.target().to_string(),
            message: fields.message,
            fields: fields.fields,
        });
    }
}

/// Now, as RFC 3339 in UTC with milliseconds.
fn timestamp() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// A time as RFC 3339 in UTC with milliseconds (fixed width: such strings sort as the times do).
pub fn rfc3339(at: std::time::SystemTime) -> String {
    let now = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        (rest / 60) % 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to a calendar date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_lines_are_formatted_as_consul_does() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
        let line = LogLine {
            level: Level::INFO,
            timestamp: "2026-11-30T20:13:19.123Z".into(),
            target: "agent".into(),
            message: "Synced service 'web'".into(),
            fields: vec![("node".into(), "n1".into())],
        };
        assert_eq!(line.text(), "2026-11-30T20:13:19.123Z [INFO]  agent: Synced service 'web' node=n1\n");
        assert!(line.json().contains("\"@level\":\"info\""));
        assert_eq!(parse_level("ERR"), Some(Level::ERROR));
        assert_eq!(parse_level("not-a-real-level"), None);
    }
}
