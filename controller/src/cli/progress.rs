//! A one-line progress bar on standard error, drawn only when it is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const WIDTH: usize = 30;
const MIB: f64 = 1024.0 * 1024.0;

pub struct ProgressBar {
    label: &'static str,
    enabled: bool,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl ProgressBar {
    pub fn new(label: &'static str) -> ProgressBar {
        ProgressBar { label, enabled: std::io::stderr().is_terminal(), last_draw: None, drawn: false }
    }

    /// Redraws at most ten times a second, and always at the end.
    pub fn update(&mut self, done: u64, total: Option<u64>) {
        let finished = total.is_some_and(|t| done >= t);
        let due = self.last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if !self.enabled || !(due || finished) {
            return;
        }
        self.last_draw = Some(Instant::now());
        self.drawn = true;
        let line = match total {
            Some(total) if total > 0 => {
                let filled = ((done.min(total) as f64 / total as f64) * WIDTH as f64) as usize;
                format!(
                    "{} [{}{}] {:.1}/{:.1} MiB {:>3}%",
                    self.label,
                    "#".repeat(filled),
                    " ".repeat(WIDTH - filled),
                    done as f64 / MIB,
                    total as f64 / MIB,
                    done.min(total) * 100 / total
                )
            }
            _ => format!("{} {:.1} MiB", self.label, done as f64 / MIB),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}");
        let _ = err.flush();
    }

    /// Ends the bar's line.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.finish();
    }
}
