//! The split-brain monitor: every 200 ms it asks every member's PostgreSQL at once whether it is
//! a primary that takes writes, and records every round in which more than one did.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sql::takes_writes;

#[derive(Default)]
struct Seen {
    /// The scenario under way and when it began.
    phase: Option<(String, Instant)>,
    /// One line per round with more than one writable primary.
    violations: Vec<String>,
}

pub struct SplitBrainMonitor {
    seen: Arc<Mutex<Seen>>,
    rounds: Arc<AtomicU64>,
    /// Rounds in which exactly one member took writes (proof that the probe itself works).
    single: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SplitBrainMonitor {
    /// Starts probing the members, given as (name, PostgreSQL port).
    pub fn start(members: Vec<(String, u16)>) -> SplitBrainMonitor {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let (rounds, single) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let task = {
            let (seen, rounds, single) = (seen.clone(), rounds.clone(), single.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let probes = members.iter().map(|(name, port)| takes_writes(*port, name));
                    let writable: Vec<&str> = futures::future::join_all(probes)
                        .await
                        .into_iter()
                        .zip(&members)
                        .filter(|(w, _)| *w)
                        .map(|(_, (name, _))| name.as_str())
                        .collect();
                    rounds.fetch_add(1, Ordering::Relaxed);
                    if writable.len() == 1 {
                        single.fetch_add(1, Ordering::Relaxed);
                    }
                    if writable.len() > 1 {
                        let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let when = match &seen.phase {
                            Some((phase, began)) => {
                                format!("{phase}, {:.1} s in", began.elapsed().as_secs_f64())
                            }
                            None => "before any scenario".into(),
                        };
                        seen.violations
                            .push(format!("{when}: {} took writes at once", writable.join(" and ")));
                    }
                }
            })
        };
        SplitBrainMonitor { seen, rounds, single, task }
    }

    /// Names the scenario that starts now, for the violations recorded from here on.
    pub fn phase(&self, name: &str) {
        self.lock().phase = Some((name.into(), Instant::now()));
    }

    /// Panics with every round that saw more than one writable primary, and `context`.
    pub fn assert_no_split_brain(&self, context: &str) {
        let seen = self.lock();
        let v = &seen.violations;
        // The first rounds and the last one show when it began and how long it lasted.
        let shown: Vec<&str> = match v.len() {
            0..=4 => v.iter().map(String::as_str).collect(),
            n => v[..3].iter().map(String::as_str).chain(["..."]).chain([v[n - 1].as_str()]).collect(),
        };
        assert!(
            v.is_empty(),
            "split brain: {} probe rounds, 200 ms apart, saw two writable primaries:\n{}\n{context}",
            v.len(),
            shown.join("\n")
        );
    }

    /// (rounds probed, rounds with exactly one writable primary).
    pub fn rounds(&self) -> (u64, u64) {
        (self.rounds.load(Ordering::Relaxed), self.single.load(Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for SplitBrainMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}
