//! openraft logs some failures once per attempt: with one server down, "timeout while confirming
//! leadership" and replication errors come several times a second (check-quorum rounds run every
//! 300 ms), and bury every other line. This layer lets each openraft call site's warnings and
//! errors through at most once per window; census' own lines, and openraft's debug lines when
//! someone turns them on, are never held back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

pub struct RepeatLimit {
    window: Duration,
    last: Mutex<HashMap<Identifier, Instant>>,
}

impl RepeatLimit {
    pub fn new(window: Duration) -> RepeatLimit {
        RepeatLimit { window, last: Mutex::new(HashMap::new()) }
    }

    /// Whether a line from `site` may be written at `now`.
    fn allow(&self, site: Identifier, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        once_per_window(&mut last, site, now, self.window)
    }
}

/// Records `key` as heard at `now` unless it was heard less than `window` before (then false).
fn once_per_window<K: std::hash::Hash + Eq>(
    last: &mut HashMap<K, Instant>,
    key: K,
    now: Instant,
    window: Duration,
) -> bool {
    match last.get(&key) {
        Some(at) if now.saturating_duration_since(*at) < window => false,
        _ => {
            last.insert(key, now);
            true
        }
    }
}

impl<S: Subscriber> Layer<S> for RepeatLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        // Warnings and errors only: whoever turns openraft's debug lines on wants them all.
        let limited = meta.target().starts_with("openraft") && *meta.level() <= tracing::Level::WARN;
        !limited || self.allow(meta.callsite(), Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_site_speaks_once_per_window_and_others_are_not_held_back() {
        let (mut last, window, t0) = (HashMap::new(), Duration::from_secs(10), Instant::now());
        assert!(once_per_window(&mut last, "a", t0, window), "the first line");
        assert!(!once_per_window(&mut last, "a", t0 + Duration::from_millis(300), window), "its repeat");
        assert!(once_per_window(&mut last, "b", t0 + Duration::from_millis(300), window), "another site");
        assert!(once_per_window(&mut last, "a", t0 + window, window), "once the window has passed");
    }
}
