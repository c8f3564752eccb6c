//! Linearizable reads share quorum rounds. Confirming leadership costs a heartbeat round trip to
//! a quorum; concurrent `?consistent` reads all wait for the same next round instead of each
//! starting their own.
//!
//! Safety: a read may only be answered by a round that *started after the read arrived* (else a
//! leader deposed in between could answer it). A read therefore joins the round that has not
//! started yet, never the one in flight; the driver starts that round only after the previous
//! one ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The outcome of one round: the read index it confirmed, or why it failed.
pub type RoundResult = Result<u64, String>;
type RoundFuture = Pin<Box<dyn Future<Output = RoundResult> + Send>>;
type RoundFn = Box<dyn Fn() -> RoundFuture + Send + Sync>;

#[derive(Default)]
struct State {
    /// A round is being confirmed (or about to be, by the driver task).
    driving: bool,
    /// The round that starts next; readers arriving now wait for it.
    next: Option<watch::Sender<Option<RoundResult>>>,
}

pub struct ReadRounds {
    state: Mutex<State>,
    round: RoundFn,
    /// The last successful round: when it started (a quorum acknowledged this leader after that
    /// moment, which is what a leader lease may count from: the monotonic clock read when asked,
    /// never a stale snapshot, so a paused process wakes with its lease expired) and the read
    /// index it returned.
    last_confirmed: Mutex<Option<(std::time::Instant, u64)>>,
    /// When the last round (successful or not, perhaps still running) started.
    last_started: Mutex<Option<std::time::Instant>>,
}

impl ReadRounds {
    /// `round` confirms leadership once (a quorum round) and answers the read index.
    pub fn new<F, Fut>(round: F) -> Arc<ReadRounds>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RoundResult> + Send + 'static,
    {
        Arc::new(ReadRounds {
            state: Mutex::default(),
            round: Box::new(move || Box::pin(round())),
            last_confirmed: Mutex::default(),
            last_started: Mutex::default(),
        })
    }

    /// The read index of a successful round that started less than `lease` ago and after
    /// `not_before` (when this server began to lead in its current term).
    pub fn lease(&self, lease: std::time::Duration, not_before: std::time::Instant) -> Option<u64> {
        let last = *self.last_confirmed.lock().unwrap_or_else(|p| p.into_inner());
        last.filter(|(t, _)| *t >= not_before && t.elapsed() < lease).map(|(_, index)| index)
    }

    /// True when a round started less than `window` ago (it may still be running).
    pub fn started_within(&self, window: std::time::Duration) -> bool {
        let last = *self.last_started.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|t| t.elapsed() < window)
    }

    /// True when a round that started less than `window` ago succeeded.
    pub fn confirmed_within(&self, window: std::time::Duration) -> bool {
        let last = *self.last_confirmed.lock().unwrap_or_else(|p| p.into_inner());
        last.is_some_and(|(t, _)| t.elapsed() < window)
    }

    /// Waits for a round that started after this call, and answers its result.
    pub async fn confirm(self: &Arc<Self>) -> RoundResult {
        let mut rx = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let rx = match &state.next {
                Some(tx) => tx.subscribe(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    state.next = Some(tx);
                    rx
                }
            };
            if !state.driving {
                state.driving = true;
                tokio::spawn(self.clone().drive());
            }
            rx
        };
        match rx.wait_for(Option::is_some).await {
            Ok(result) => result.clone().unwrap_or_else(|| Err("read round lost".into())),
            Err(_) => Err("read round abandoned".into()),
        }
    }

    /// Runs rounds back to back while readers are waiting for one.
    async fn drive(self: Arc<Self>) {
        loop {
            let tx = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                match state.next.take() {
                    Some(tx) => tx,
                    None => {
                        state.driving = false;
                        return;
                    }
                }
            };
            let started = std::time::Instant::now();
            *self.last_started.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
            let result = (self.round)().await;
            if let Ok(index) = &result {
                let mut last = self.last_confirmed.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|(t, _)| t < started) {
                    *last = Some((started, *index));
                }
            }
            let _ = tx.send(Some(result));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    /// Rounds that count themselves, announce their start and take `ms` to finish.
    fn counting_rounds(ms: u64) -> (Arc<ReadRounds>, Arc<AtomicU64>, Arc<Notify>) {
        let started = Arc::new(AtomicU64::new(0));
        let notify = Arc::new(Notify::new());
        let (s, n) = (started.clone(), notify.clone());
        let rounds = ReadRounds::new(move || {
            let number = s.fetch_add(1, Ordering::SeqCst) + 1;
            n.notify_waiters();
            async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(number)
            }
        });
        (rounds, started, notify)
    }

    #[tokio::test]
    async fn concurrent_reads_share_rounds() {
        let (rounds, started, _) = counting_rounds(20);
        let reads: Vec<_> = (0..100)
            .map(|_| {
                tokio::spawn({
                    let rounds = rounds.clone();
                    async move { rounds.confirm().await }
                })
            })
            .collect();
        for read in reads {
            assert!(read.await.expect("join").is_ok());
        }
        let n = started.load(Ordering::SeqCst);
        assert!((1..=2).contains(&n), "100 concurrent reads took {n} rounds");
    }

    #[tokio::test]
    async fn a_read_arriving_mid_round_waits_for_the_next_round() {
        let (rounds, started, notify) = counting_rounds(50);
        let first_started = notify.notified();
        let first = tokio::spawn({
            let rounds = rounds.clone();
            async move { rounds.confirm().await }
        });
        first_started.await;
        assert_eq!(started.load(Ordering::SeqCst), 1);
        let second = rounds.confirm().await.expect("second read");
        assert_eq!(second, 2, "a read was answered by a round that began before it arrived");
        assert_eq!(first.await.expect("join"), Ok(1));
    }

    #[tokio::test]
    async fn a_failed_round_fails_its_readers_and_the_next_round_runs_afresh() {
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let f = fail.clone();
        let rounds = ReadRounds::new(move || {
            let failing = f.load(Ordering::SeqCst);
            async move { if failing { Err("not leader".to_string()) } else { Ok(7) } }
        });
        assert_eq!(rounds.confirm().await, Err("not leader".to_string()));
        fail.store(false, Ordering::SeqCst);
        assert_eq!(rounds.confirm().await, Ok(7));
    }
}
